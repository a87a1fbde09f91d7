"""The API's one error shape and the handlers that produce it.

Every refusal answers `{"error": {"code", "message", "field", "details"}}`: `code` is
machine-readable (`camera_not_found`, `invalid_input`, `database_unavailable`, ...),
`message` is for people, `field` names the field at fault when there is one, `details`
lists every refused field of a request that failed validation. Messages are masked
(credentials never appear) and refused inputs are cut short. This module maps
exceptions to codes; it does not decide what is refused (the service and the request
models do).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.app.api.service_api import Conflict, NotFound, ServiceUnavailable
from pipeline.validation import InputError, mask_text
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

_FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,63}): ")
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 413: "too_large",
               415: "unsupported_media_type"}


class ApiError(Exception):
    """A refusal a route raises itself, with its status, code and field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


def error_body(code: str, message: str, field: str | None = None,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": mask_text(message)[:2000], "field": field}
    if details is not None:
        body["details"] = details
    return {"error": body}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None,
                   details: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, field, details), status_code=status,
                        headers=headers)


def _field_of(exc: Exception) -> str | None:
    field = getattr(exc, "field", None)
    if isinstance(field, str):
        return field
    match = _FIELD_PREFIX.match(str(exc))
    return match.group(1) if match else None


def _classify(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, f"{_field_of(exc) or 'record'}_not_found"
    if isinstance(exc, Conflict):
        return 409, f"{_field_of(exc) or 'value'}_taken"
    if isinstance(exc, DatabaseUnavailable):
        return 503, "database_unavailable"
    if isinstance(exc, ServiceUnavailable):
        return 503, "service_unavailable"
    return 400, "invalid_input"  # InputError and every other ValueError


def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    status, code = _classify(exc)
    if status >= 500:
        log.warning("service unavailable: %s", exc)
    return error_response(status, code, str(exc), _field_of(exc))


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, str(exc), exc.field)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def shown(value: Any) -> Any:
    """A refused input as an error may show it: strings masked and cut, no containers."""
    if isinstance(value, str):
        value = mask_text(value)
        return value if len(value) <= 60 else f"{value[:57]}... ({len(value)} characters)"
    if isinstance(value, bool | int | float) or value is None:
        return value
    return f"<{type(value).__name__}>"


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, never echoing a secret or an oversized input."""
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": list(e.get("loc", ())), "msg": mask_text(str(e.get("msg", "")))[:300],
                "type": e.get("type"), "input": shown(e.get("input"))}
               for e in exc.errors()]
    names = [".".join(str(p) for p in d["loc"][1:]) or str(d["loc"][0]) for d in details
             if d["loc"]]
    message = "; ".join(f"{n}: {d['msg']}" for n, d in zip(names, details, strict=False))
    return error_response(422, "invalid_input", message or "invalid request",
                          names[0] if names else None, details=details)


def install_error_handlers(app: FastAPI) -> None:
    for exc_type in (NotFound, Conflict, InputError, ValueError, ServiceUnavailable,
                     DatabaseUnavailable):
        app.add_exception_handler(exc_type, _service_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
