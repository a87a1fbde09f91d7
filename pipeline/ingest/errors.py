"""Ingest errors and URL masking.

Owns the exception types the reader and supervisor raise and the one place that turns a
low-level PyAV/OS failure into a message an operator can act on: it names the camera and
the cause and never contains a password. It does not decide whether to retry (the
supervisor does).
"""

from __future__ import annotations

import errno
import re
from urllib.parse import urlsplit, urlunsplit

import av

try:  # the shared rule, once the storage layer is in the checkout
    from storage.secrets import mask_url as _shared_mask_url
except ImportError:
    _shared_mask_url = None

SUPPORTED_SCHEMES = ("rtsp", "rtsps")
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def mask_url(url: str) -> str:
    """`rtsp://user:pass@host/x` -> `rtsp://user:***@host/x`; other strings unchanged.

    Uses `storage.secrets.mask_url` (the project's one masking rule) where that module is
    present; the local rule below only bridges checkouts without it.
    """
    if _shared_mask_url is not None:
        return _shared_mask_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """Remove the raw URL (and any `user:pass@` in `text`) so errors never leak secrets."""
    if url:
        text = text.replace(url, mask_url(url))
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)


class IngestError(Exception):
    """A stream could not be opened or read. `str()` names the camera, URL (masked), cause."""

    def __init__(self, camera: str, url: str, cause: str) -> None:
        self.camera = camera
        self.url = mask_url(url)
        self.cause = scrub(cause, url)
        super().__init__(f"camera {camera!r}: {self.url}: {self.cause}")


class UnsupportedSchemeError(IngestError, ValueError):
    """The URL's scheme is neither a file path nor rtsp:// / rtsps://."""


class StreamOpenError(IngestError):
    """Open failed: missing file, not a video, refused or unreachable host, timeout."""


class StreamReadError(IngestError):
    """Reading failed after the stream was open: connection lost, corrupt data, stall."""


class StreamStalledError(StreamReadError):
    """No decoded frame within the read timeout although the connection stayed open."""


def describe(exc: BaseException) -> str:
    """A short cause for a PyAV/OS exception, without the file name PyAV appends."""
    if isinstance(exc, av.error.FFmpegError | OSError) and getattr(exc, "strerror", None):
        cause = str(exc.strerror)
        code = getattr(exc, "errno", None)
        if code in (errno.ETIMEDOUT,) or "timed out" in cause.lower():
            return f"timed out ({cause})"
        if isinstance(exc, av.error.InvalidDataError):
            return f"not a readable video: {cause}"
        return cause
    return f"{type(exc).__name__}: {exc}"
