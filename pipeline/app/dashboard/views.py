"""The dashboard's pages, their HTML fragments, and log in / log out.

Pages: `/` (cameras), `/ui/cameras/{name}` (timeline), `/ui/ask`, `/ui/alerts`,
`/ui/admin`; fragments under `/ui/fragments/` that the page script polls and swaps in
(the same templates render the first paint, so there is one rendering path). Every page
reads the same `ServiceAPI` the JSON routes call; what a page changes (add, patch, remove
a camera, acknowledge an alert, ask) the script sends to the JSON API itself, so the
dashboard applies exactly the API's validation.

Log in sets an HttpOnly, SameSite=Strict session cookie (Secure over https) that the
API accepts beside the bearer token (pipeline/app/api/auth.py); the token is never echoed
or stored in the cookie. With no token configured (loopback only) everything is open.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from pipeline.app.api.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    authenticated,
    session_value,
    token_valid,
)
from pipeline.app.api.service_api import NotFound, ServiceAPI
from pipeline.app.dashboard.overview import health_parts, memory_by_camera
from pipeline.app.dashboard.timefmt import iso_utc, local_time, relative_time

HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 8192
WRONG_TOKEN_DELAY_S = 0.3  # slows guessing a little; the bind rule does the rest
# Only this origin's own files: no CDN, no inline script or style attributes.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(localtime=local_time, ago=relative_time, isoutc=iso_utc,
                             tojson_pretty=lambda v: json.dumps(v, indent=2, default=str))
router = APIRouter(include_in_schema=False)

PAGES = [("cameras", "/", "Cameras"), ("ask", "/ui/ask", "Ask"),
         ("alerts", "/ui/alerts", "Alerts"), ("admin", "/ui/admin", "Admin")]


def mount_dashboard(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)


def _service(request: Request) -> ServiceAPI:
    return request.app.state.service


def _tz(request: Request, camera: str) -> str:
    cfg = request.app.state.cfg
    try:
        return cfg.camera(camera).timezone
    except (AttributeError, KeyError, ValueError):
        return "UTC"


def _allowed(request: Request) -> bool:
    return authenticated(request, request.app.state.token)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _page(request: Request, name: str, page: str, status: int = 200,
          **context: Any) -> HTMLResponse:
    context.update(page=page, pages=PAGES, auth_required=bool(request.app.state.token))
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update({"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer",
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    return response


def _fragment(request: Request, name: str, **context: Any) -> Response:
    """A piece of a page; its route answers 401 first when the session is gone (the
    script then sends the operator to the login page)."""
    return _page(request, name, "fragment", **context)


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme) is a place to go back to."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# ------------------------------------------------------------------ log in / log out


@router.get("/login")
def login_page(request: Request, next: str | None = Query(None, max_length=2000),
               failed: bool = False) -> Response:
    if not request.app.state.token:
        return RedirectResponse(_safe_next(next), status_code=303)
    error = "That token is not valid. Use the service's api.token." if failed else None
    return _page(request, "login.html", "login", next=_safe_next(next), error=error)


@router.post("/login")
async def login(request: Request) -> Response:
    token = request.app.state.token
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return Response("form too large", status_code=413)
    form = parse_qs((await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    target = _safe_next((form.get("next") or ["/"])[0])
    if not token:
        return RedirectResponse(target, status_code=303)
    if not token_valid(token, (form.get("token") or [""])[0]):
        await anyio.sleep(WRONG_TOKEN_DELAY_S)  # then back to the form (post/redirect/get)
        return RedirectResponse(f"/login?failed=1&next={quote(target, safe='')}",
                                status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_value(token), max_age=SESSION_MAX_AGE_S,
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login" if request.app.state.token else "/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


# ------------------------------------------------------------------ cameras


def _cards(request: Request) -> list[dict[str, Any]]:
    service = _service(request)
    cameras = service.list_cameras()
    memory = memory_by_camera(service.health()) if cameras else {}
    for camera in cameras:
        camera["memory"] = memory.get(camera["name"])
        ingest = camera.get("ingest") or {}
        camera["shown_state"] = ingest.get("state") or camera["status"]
        camera["shown_error"] = ingest.get("last_error") or camera.get("last_error")
    return cameras


@router.get("/")
def cameras_page(request: Request) -> Response:
    if not _allowed(request):
        return _to_login(request)
    return _page(request, "cameras.html", "cameras", cameras=_cards(request))


@router.get("/ui/fragments/cameras")
def cameras_fragment(request: Request) -> Response:
    if not _allowed(request):
        return Response(status_code=401)
    return _fragment(request, "_camera_cards.html", cameras=_cards(request))


@router.get("/ui/cameras/{name}")
def camera_page(request: Request, name: str) -> Response:
    if not _allowed(request):
        return _to_login(request)
    try:
        camera = _service(request).camera_status(name)
    except NotFound:
        return _page(request, "not_found.html", "cameras", status=404,
                     what=f"No camera is called {name!r}.")
    return _page(request, "camera.html", "cameras", camera=camera)


# ------------------------------------------------------------------ ask


@router.get("/ui/ask")
def ask_page(request: Request, camera: str | None = Query(None, max_length=64)) -> Response:
    if not _allowed(request):
        return _to_login(request)
    cameras = _service(request).list_cameras()
    return _page(request, "ask.html", "ask", cameras=cameras, selected=camera)


# ------------------------------------------------------------------ alerts


def _alert_rows(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "tz": _tz(request, row["camera"])} for row in rows]


PAGE_SIZE = 30


@router.get("/ui/alerts")
def alerts_page(request: Request, camera: str | None = Query(None, max_length=64)
                ) -> Response:
    if not _allowed(request):
        return _to_login(request)
    service = _service(request)
    rows = _alert_rows(request, service.recent_alerts(None, camera, None, PAGE_SIZE))
    newest = max((r["alert_id"] for r in rows), default=0)
    return _page(request, "alerts.html", "alerts", alerts=rows, camera=camera,
                 cameras=service.list_cameras(), newest=newest,
                 more=len(rows) == PAGE_SIZE)


@router.get("/ui/fragments/alerts")
def alerts_fragment(request: Request, before: int | None = Query(None, ge=1),
                    camera: str | None = Query(None, max_length=64)) -> Response:
    """An older page of alerts (the "older" button)."""
    if not _allowed(request):
        return Response(status_code=401)
    rows = _alert_rows(request, _service(request).recent_alerts(before, camera, None,
                                                                PAGE_SIZE))
    return _fragment(request, "_alert_list.html", alerts=rows,
                     more=len(rows) == PAGE_SIZE)


@router.get("/ui/fragments/alerts/{alert_id}")
def alert_fragment(request: Request, alert_id: int) -> Response:
    """One alert (what the live stream announced, or one just acknowledged)."""
    if not _allowed(request):
        return Response(status_code=401)
    row = _service(request).alert(alert_id)
    return _fragment(request, "_alert.html", alert=_alert_rows(request, [row])[0])


# ------------------------------------------------------------------ admin


@router.get("/ui/admin")
def admin_page(request: Request) -> Response:
    if not _allowed(request):
        return _to_login(request)
    service = _service(request)
    health = service.health()
    return _page(request, "admin.html", "admin", cameras=service.list_cameras(),
                 parts=health_parts(health), health=health)


@router.get("/ui/fragments/admin-cameras")
def admin_cameras_fragment(request: Request) -> Response:
    if not _allowed(request):
        return Response(status_code=401)
    return _fragment(request, "_admin_cameras.html", cameras=_service(request).list_cameras())


@router.get("/ui/fragments/health")
def health_fragment(request: Request) -> Response:
    if not _allowed(request):
        return Response(status_code=401)
    health = _service(request).health()
    return _fragment(request, "_health.html", parts=health_parts(health), health=health)
