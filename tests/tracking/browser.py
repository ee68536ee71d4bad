"""Debian's headless Chromium on MLflow's UI: rendered text of a page (`--dump-dom` after the
single-page app ran) and screenshots. `.ci/run` installs it (`apt-get install chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

UI_HOST = "mlflow-ui"  # resolved to 127.0.0.1 inside Chromium only (see servers.mlflow_server)
# Text of MLflow's error states, none of which a good page shows.
ERRORS = ("Request error", "INTERNAL_ERROR", "load error", "Page Not Found", "does not exist")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _flags(width: int, height: int) -> list[str]:
    return [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--hide-scrollbars", f"--window-size={width},{height}",
        # The UI fetches data after load: let virtual time run, and draw charts before capture.
        "--virtual-time-budget=15000", "--run-all-compositor-stages-before-draw",
        f"--host-resolver-rules=MAP {UI_HOST} 127.0.0.1",
    ]  # fmt: skip


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.skip, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style", "svg", "noscript")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "svg", "noscript") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.parts.append(data.strip())


def page_text(url: str, width: int = 1600, height: int = 1100) -> str:
    """The visible text of the rendered page, nodes joined by spaces, whitespace normalised."""
    done = subprocess.run(
        [chromium_path(), *_flags(width, height), "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    parser = _Text()
    parser.feed(done.stdout)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def screenshot(url: str, out: Path, width: int = 1600, height: int = 1000) -> Path:
    subprocess.run(
        [chromium_path(), *_flags(width, height), f"--screenshot={out}", url],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    return out
