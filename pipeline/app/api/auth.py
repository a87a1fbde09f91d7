"""Bearer-token checks for the HTTP API.

Owns the bind rule (a non-loopback bind needs a token: `require_token_for_bind`) and the
request check (constant-time comparison of `Authorization: Bearer <token>`). It does not
manage users or token storage: the token comes from the config (`api.token`).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from fastapi import HTTPException, Request, status

_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


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


def token_checker(token: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency; with no token configured every request passes."""
    expected = token.encode() if token else None

    def check(request: Request) -> None:
        if expected is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                detail="Authorization: a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
