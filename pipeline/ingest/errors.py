"""Ingest errors and URL masking.

Owns the exception types the reader and supervisor raise and the one place that turns a
low-level PyAV/OS failure into a message an operator can act on: it names the camera and
the cause and never contains a password. It does not decide whether to retry (the
supervisor does).
"""

from __future__ import annotations

import errno

import av

from storage.secrets import mask_text, mask_url

SUPPORTED_SCHEMES = ("rtsp", "rtsps")


def scrub(text: str, url: str) -> str:
    """Remove the raw URL (and any `user:pass@` in `text`) so errors never leak secrets."""
    if url:
        text = text.replace(url, mask_url(url))
    return mask_text(text)


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
