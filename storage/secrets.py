"""Camera URL secrets: masking for display and symmetric encryption at rest.

Owns `mask_url` (the one place that decides what an operator may see of a URL) and
`UrlCipher` (Fernet, from cryptography) with its key: either derived from the operator's
`XLWATCH_SECRET_KEY` or a random key kept in a 0600 file in the data directory. It does not
decide which URLs are acceptable (pipeline/validation.py does) and never logs a URL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

KEY_FILE_NAME = "secret.key"
_MASK = "***"
# Credentials in query strings (`?password=...`, `?token=...`) are as secret as userinfo.
_SECRET_QUERY = re.compile(
    r"(?i)\b(pass(?:word|wd)?|pwd|token|secret|key|auth|signature|sig)=([^&#]*)"
)


def mask_url(url: str) -> str:
    """`rtsp://alice:s3cret@host/path` -> `rtsp://alice:***@host/path`.

    Passwords in userinfo and secret-looking query parameters are replaced; everything else
    (scheme, user, host, port, path) stays so the operator can still tell cameras apart.
    Anything that does not parse as a URL is returned with any `user:pass@` masked.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@/]*@", rf"//\1:{_MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{hostport}" if sep else f"{user}@{hostport}"
    query = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={_MASK}", parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# Greedy up to the last '@' before the path: a raw '@' may sit inside a password.
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s:/@]*):[^\s/]*@")


def mask_text(text: str) -> str:
    """Mask every URL credential inside free text (error messages, log lines)."""
    text = _USERINFO_IN_TEXT.sub(rf"\1\2:{_MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={_MASK}", text)


# What the example files (deploy/xlwatch.env.example, deploy/k8s/config.yaml) and common
# templates put where a secret belongs; such a value must never run a service.
_PLACEHOLDER_PREFIXES = ("replace", "change-me", "change_me", "changeme", "change-this",
                         "your-", "your_", "insert-", "<", "${")
_PLACEHOLDER_WORDS = frozenset({"placeholder", "secret", "password", "passwd", "token",
                                "todo", "fixme", "example", "default", "dummy", "xxx"})


def is_placeholder(value: str) -> bool:
    """True for a template value (`REPLACE`, `change-me`, `<token>`, `xxxx`, ...) where a
    secret belongs. Callers report the setting's name, never the value."""
    v = value.strip().lower()
    return (not v or v.startswith(_PLACEHOLDER_PREFIXES) or v in _PLACEHOLDER_WORDS
            or set(v) <= {"x", "*", "."})


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo (`scheme://user:pass@host`), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


class SecretError(RuntimeError):
    """A stored secret cannot be decrypted (wrong key) or the key file is unusable."""


class UrlCipher:
    """Encrypts and decrypts camera URLs with one Fernet key (AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet  # here: masking needs no cryptography

        self._fernet = Fernet(key)

    @classmethod
    def from_passphrase(cls, secret: str) -> UrlCipher:
        """Derive the key from an operator secret; any non-empty string works."""
        if not secret:
            raise SecretError("secret_key: must not be empty")
        digest = hashlib.sha256(b"xlwatch-url-key\x00" + secret.encode()).digest()
        return cls(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretError(
                "cannot decrypt a stored camera URL: the secret key differs from the one it "
                "was stored with (XLWATCH_SECRET_KEY or the data dir's secret.key)"
            ) from exc


def load_cipher(data_dir: Path, secret_key: str | None = None) -> UrlCipher:
    """The cipher for this deployment.

    `secret_key` (from `XLWATCH_SECRET_KEY`) wins; otherwise the key file in `data_dir` is
    read, or created with mode 0600 on first use. Creation uses O_EXCL so two processes
    starting together agree on one key.
    """
    if secret_key:
        return UrlCipher.from_passphrase(secret_key)
    path = Path(data_dir) / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return UrlCipher(_read_key_file(path))
    from cryptography.fernet import Fernet

    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key())
        fh.flush()
        os.fsync(fh.fileno())
    return UrlCipher(_read_key_file(path))


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretError(f"key file {path}: permissions {oct(mode)} are too open; want 0o600")
    key = path.read_bytes().strip()
    if not key:
        # Another process created the file and has not written the key yet.
        for _ in range(50):
            time.sleep(0.02)
            key = path.read_bytes().strip()
            if key:
                break
    from cryptography.fernet import Fernet

    try:
        Fernet(key)
    except ValueError as exc:
        raise SecretError(f"key file {path}: not a valid key") from exc
    return key
