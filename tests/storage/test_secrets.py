"""URL masking and encryption at rest, including what lands in the database file's bytes."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from storage import repo
from storage.db import open_database, sqlite_url
from storage.secrets import SecretError, UrlCipher, load_cipher, mask_text, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://alice:s3cret@host/path", "rtsp://alice:***@host/path"),
        ("rtsps://alice:s3cret@host:322/a/b?x=1", "rtsps://alice:***@host:322/a/b?x=1"),
        ("http://cam.local/snap?user=bob&password=pw1", "http://cam.local/snap?user=bob&password=***"),
        ("rtsp://alice@host/p", "rtsp://alice@host/p"),
        ("rtsp://u:p@ss@h:554/x", "rtsp://u:***@h:554/x"),
        ("rtsp://host/p", "rtsp://host/p"),
        ("/videos/lobby.mp4", "/videos/lobby.mp4"),
    ],
)
def test_mask_url_hides_passwords_and_keeps_the_rest(url: str, masked: str):
    assert mask_url(url) == masked


def test_mask_text_masks_urls_inside_messages():
    text = ("open rtsp://alice:s3cret@h/p failed; retry http://u:p4ss@x/y?token=abc "
            "and rtsp://v:at@sign@z/q")
    out = mask_text(text)
    for secret in ("s3cret", "p4ss", "abc", "sign"):
        assert secret not in out
    assert "rtsp://alice:***@h/p" in out


def test_cipher_round_trips_and_wrong_key_fails_clearly():
    token = UrlCipher.from_passphrase("one").encrypt("rtsp://a:b@c/d")
    assert "rtsp" not in token
    assert UrlCipher.from_passphrase("one").decrypt(token) == "rtsp://a:b@c/d"
    with pytest.raises(SecretError, match="secret key"):
        UrlCipher.from_passphrase("two").decrypt(token)


def test_key_file_created_0600_and_reused(tmp_path: Path):
    c1 = load_cipher(tmp_path)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = c1.encrypt("x")
    assert load_cipher(tmp_path).decrypt(token) == "x"
    key_file.chmod(0o644)
    with pytest.raises(SecretError, match="too open"):
        load_cipher(tmp_path)


def test_secret_key_overrides_key_file(tmp_path: Path):
    token = load_cipher(tmp_path, "env-secret").encrypt("x")
    assert not (tmp_path / "secret.key").exists()
    assert UrlCipher.from_passphrase("env-secret").decrypt(token) == "x"


def test_password_never_in_sqlite_file_bytes_or_logs(tmp_path: Path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "xlwatch.db"
    db = open_database(sqlite_url(path))
    cipher = load_cipher(tmp_path)
    url = "rtsp://alice:s3cret@10.1.2.3:554/live"
    with db.session() as s:
        cam = repo.add_camera(s, "door", url, cipher)
    with db.session() as s:
        assert repo.camera_url(s, "door", cipher) == url
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("xlwatch.db*"))
    db.close()
    raw += path.read_bytes()  # after checkpoint on close, too
    assert b"s3cret" not in raw
    assert b"rtsp://alice:***@10.1.2.3:554/live" in raw
    assert cam.url_masked == "rtsp://alice:***@10.1.2.3:554/live"
    assert "s3cret" not in caplog.text


_PASSWORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,;=%@:-._~"


@settings(max_examples=200, deadline=None)
@given(
    user=st.text("abcdefghij0123456789", min_size=1, max_size=8),
    password=st.text(_PASSWORD_CHARS, min_size=6, max_size=20),
    scheme=st.sampled_from(["rtsp", "rtsps", "http", "https"]),
)
def test_masking_never_shows_any_password(user: str, password: str, scheme: str):
    expected = f"{scheme}://{user}:***@cam.example:554/live/ch1"
    assume(password not in f"error opening {expected} (timeout)")  # e.g. user == password
    url = f"{scheme}://{user}:{password}@cam.example:554/live/ch1"
    for shown in (mask_url(url), mask_text(f"error opening {url} (timeout)")):
        assert password not in shown
        assert expected in shown
