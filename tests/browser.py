"""Helpers for browser tests: Playwright driving Debian's `chromium`, headless.

Playwright never downloads a browser here: the system chromium (the apt package, which
scripts/install-system-deps.sh installs) is launched by path. In CI (CI=true) a missing
chromium or Playwright fails the test; on a laptop the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.services import missing

SHOTS = Path(os.environ.get("XLWATCH_SHOTS_DIR", "/tmp/dash_shots"))
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 375, "height": 800}


def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("Playwright is not installed (pip install -e '.[dev]')")
    chosen = os.environ.get("XLWATCH_CHROMIUM")  # a chromium elsewhere (only that one)
    path = ((chosen if os.path.isfile(chosen) else None) if chosen else
            shutil.which("chromium") or shutil.which("chromium-browser"))
    if path is None:
        missing("Debian's chromium is not installed (scripts/install-system-deps.sh "
                "installs it; Playwright's own browser downloads are never used)")
    return path  # type: ignore[return-value]


def launch(playwright):  # -> playwright Browser
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


class ConsoleWatch:
    """Every console error and uncaught page error of a page, for a no-errors check."""

    def __init__(self, page, allow: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.allow = list(allow)
        page.on("console", lambda m: m.type == "error" and self._add(f"console: {m.text}"))
        page.on("pageerror", lambda e: self._add(f"pageerror: {e}"))

    def _add(self, text: str) -> None:
        if not any(a in text for a in self.allow):
            self.errors.append(text)


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: none)."""
    return page.evaluate("() => document.documentElement.scrollWidth - "
                         "document.documentElement.clientWidth")
