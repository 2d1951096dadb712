"""A real headless browser over a page: Chromium (Debian's package; `make chromium` installs it)
renders the file, takes a screenshot and logs every console message (`--enable-logging`).

The report pages have no scripts, so *any* console message (e.g. a script error) is a defect;
a blank screenshot means nothing rendered.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONSOLE_LINE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\]\s*(.*)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise AssertionError("No Chromium on PATH: run `make chromium` (Debian: apt-get install chromium).")


@dataclass(frozen=True)
class Rendered:
    console: list[str]  # console messages the page logged
    distinct_colours: int  # in the screenshot; 1 = blank


def render(page: Path, screenshot: Path, width: int = 1200, height: int = 900) -> Rendered:
    from PIL import Image

    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={width},{height}",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and screenshot.is_file(), done.stderr[-3000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE_LINE.search(line))]
    with Image.open(io.BytesIO(screenshot.read_bytes())) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return Rendered(console, len(colours) if colours is not None else 1 << 20)
