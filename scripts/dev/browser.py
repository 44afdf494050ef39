"""Headless Chromium for the HTML pages: the page tests, bench_explorer.py and explorer_screenshots.py
drive it.

Playwright for Python drives the system's Chromium (Debian's `chromium` package): Playwright's own
browser download needs the network. The flags keep the browser from reaching the network by itself
(component updates, background requests); a plain launch starts from a fresh, empty profile.
"""
import shutil

import numpy as np

INSTALL_HINT = "needs Chromium and Playwright for Python: apt-get install -y chromium && pip install playwright"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-gpu"]


def chromium_executable():
    """The system Chromium's path, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return chromium_executable() is not None


def launch_chromium(playwright):
    """A headless Chromium from a started `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS)


def cell_colours(page, canvas_id: str, rows: int, cols: int):
    """The RGB colour at the centre of each of rows x cols equal cells of a canvas: (rows, cols, 3) ints."""
    colours = page.evaluate("""([id, rows, cols]) => {
        const canvas = document.getElementById(id);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        const out = [];
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
            const x = Math.floor((c + 0.5) * canvas.width / cols), y = Math.floor((r + 0.5) * canvas.height / rows);
            const i = 4 * (y * canvas.width + x);
            out.push([data[i], data[i + 1], data[i + 2]]);
        }
        return out;
    }""", [canvas_id, rows, cols])
    return np.array(colours, dtype=np.int64).reshape(rows, cols, 3)


def point_in_cell(page, canvas_id: str, row: int, col: int, rows: int, cols: int) -> tuple:
    """Page coordinates of the centre of cell (row, col) of a canvas cut into rows x cols cells."""
    box = page.locator(f"#{canvas_id}").bounding_box()
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows
