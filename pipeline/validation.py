"""Edge validators for operator input: camera names, camera URLs and local paths.

Owns the rules of what a camera may be called and where it may read from (rtsp, rtsps,
http(s), or a file under an allowed root), and `InputError`, whose message names the field
and the (masked) value. URL masking and encryption live in storage/secrets.py because the
storage layer needs them too and cannot import pipeline/; they are re-exported here. This
module does not touch the network or the database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.secrets import mask_text, mask_url

__all__ = [
    "CAMERA_NAME_RE",
    "InputError",
    "is_file_source",
    "mask_text",
    "mask_url",
    "check_readable_video",
    "validate_camera_name",
    "validate_camera_url",
    "validate_fps",
]

CAMERA_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NETWORK_SCHEMES = ("rtsp", "rtsps")  # what the stream reader opens (http(s) it does not)
MAX_FPS = 4.0


class InputError(ValueError):
    """Bad operator input; the message names the field and the value (credentials masked)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = mask_text(value) if isinstance(value, str) else value
        super().__init__(f"{field}: {reason}; got {self.value!r}")


def validate_camera_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not CAMERA_NAME_RE.fullmatch(name):
        raise InputError(
            field, name, "must match ^[a-z0-9][a-z0-9_-]{0,63}$ (lowercase letters, digits, "
            "'-' and '_', at most 64 characters, starting with a letter or digit)"
        )
    return name


def validate_fps(fps: float, field: str = "fps") -> float:
    if not isinstance(fps, int | float) or not math.isfinite(fps) or not 0 < fps <= MAX_FPS:
        raise InputError(field, fps, f"must be greater than 0 and at most {MAX_FPS:g}")
    return float(fps)


def is_file_source(url: str) -> bool:
    """True for a local file (a path or a file:// URL), False for network streams."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def validate_camera_url(url: str, allowed_roots: Iterable[Path], field: str = "url") -> str:
    """Return the URL to store: network URLs unchanged, files as an absolute resolved path.

    Files must exist, be regular files, and resolve (symlinks followed) inside one of
    `allowed_roots`, so a camera cannot be pointed at arbitrary files on the host.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(field, url, "must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise InputError(field, url, "must not contain control characters")
    if is_file_source(url):
        return str(_validate_file(url, list(allowed_roots), field))
    if any(c.isspace() for c in url):
        raise InputError(field, url, "must not contain whitespace (percent-encode it)")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(field, url, f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in NETWORK_SCHEMES:
        raise InputError(
            field, url, f"unsupported scheme {scheme!r}; use rtsp, rtsps or a local file path"
        )
    if not parts.hostname:
        raise InputError(field, url, "has no host")
    return url


def check_readable_video(path: str, field: str = "url") -> None:
    """Open a file camera's video and decode its first frame; InputError naming the field
    if it is empty, corrupt or no video (checked at `camera add` and `POST /cameras`)."""
    import av  # here: the other checks need no PyAV

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(field, path, "is not a video: it has no video stream")
            for _frame in container.decode(video=0):
                return
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        reason = str(exc).split(": '", 1)[0][:200]
        raise InputError(field, path, f"is not a readable video ({reason})") from None
    raise InputError(field, path, "is not a readable video (no frame decodes)")


def _validate_file(url: str, roots: list[Path], field: str) -> Path:
    raw = unquote(urlsplit(url).path) if url.lower().startswith("file:") else url
    path = Path(raw).expanduser()
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(field, url, "file does not exist") from None
    except (OSError, RuntimeError) as exc:
        raise InputError(field, url, f"cannot resolve path ({exc})") from None
    if not resolved.is_file():
        raise InputError(field, url, "is not a regular file")
    resolved_roots = [Path(r).expanduser().resolve() for r in roots]
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        shown = ", ".join(str(r) for r in resolved_roots) or "(none)"
        raise InputError(field, url, f"file is outside the allowed roots ({shown})")
    return resolved
