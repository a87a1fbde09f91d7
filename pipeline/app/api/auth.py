"""Token checks for the HTTP API and the dashboard.

Owns the bind rule (a non-loopback bind needs a token: `require_token_for_bind`) and the
request check: `Authorization: Bearer <token>` or the dashboard's session cookie, either
one (constant-time comparisons). The cookie never holds the token: it is an issue time
and an HMAC of it keyed by the token, so it expires, and a new token ends every session.
It does not manage users or token storage: the token comes from the config (`api.token`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
SESSION_COOKIE = "xlwatch_session"
SESSION_MAX_AGE_S = 12 * 3600

# Declared in the OpenAPI so /docs can authorize; either one is enough.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer",
                           description="the service's api.token")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                             description="the dashboard's session (POST /login sets it)")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; 0.0.0.0 and :: listen everywhere."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def require_token_for_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a bearer token."""
    if not is_loopback(host) and not (token and token.strip()):
        raise ValueError(f"api.token: a bearer token is required when api.host is not "
                         f"loopback; got api.host {host!r} and no token")


def _mac(token: str, issued: int) -> str:
    return hmac.new(token.encode(), f"xlwatch-session:{issued}".encode(),
                    hashlib.sha256).hexdigest()


def session_value(token: str, now: float | None = None) -> str:
    """The session cookie's value: `<issued>.<hmac>` (never the token itself)."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_mac(token, issued)}"


def session_valid(token: str, value: str | None, now: float | None = None) -> bool:
    issued_text, _, mac = (value or "").partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    age = (time.time() if now is None else now) - issued
    return 0 <= age + 60 and age <= SESSION_MAX_AGE_S and hmac.compare_digest(
        mac.encode(), _mac(token, issued).encode())


def token_valid(token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.strip().encode(), token.encode())


def authenticated(request: Request, token: str | None) -> bool:
    """The request carries the bearer token or a valid session (always, with no token)."""
    if not token:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_valid(token, given):
        return True
    return session_valid(token, request.cookies.get(SESSION_COOKIE))


def token_checker(token: str | None) -> Callable[..., None]:
    """A FastAPI dependency; with no token configured every request passes."""

    def check(request: Request,
              _bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
              _session: str | None = Depends(cookie_scheme)) -> None:
        if not authenticated(request, token):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                detail="Authorization: a valid bearer token (or a dashboard "
                                       "session) is required",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
