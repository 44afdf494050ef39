"""Screenshots of the explorer pages, taken in headless Chromium, for the README.

The ViT page (of one model, or two with --compare) with the attention from a pinned patch at one
layer, the caption page with one word pinned: the pages as a user sees them after one click.

  python scripts/dev/explorer_screenshots.py --vit demo_out/attention_explorer.html \
      --caption demo_out/caption_explorer.html --out_dir docs/figures
"""
import argparse
import io
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError, atomic_path, make_folder
from PIL import Image

from browser import INSTALL_HINT, browser_available, launch_chromium, point_in_cell


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vit", metavar="FILE", help="a page of p1_vis_attention.py --html")
    p.add_argument("--caption", metavar="FILE", help="a page of p2_vis_caption.py --html")
    p.add_argument("--out_dir", required=True, metavar="DIR",
                   help="where explorer_vit.png and explorer_caption.png go")
    p.add_argument("--patch", type=int, nargs=2, default=(3, 3), metavar=("ROW", "COL"),
                   help="the ViT page's pinned patch (default %(default)s)")
    p.add_argument("--layer", type=int, default=2, metavar="L",
                   help="the ViT page's layer, from 0 (default %(default)s)")
    p.add_argument("--word", type=int, default=1, metavar="K",
                   help="the caption page's pinned word, from 0 (default %(default)s)")
    return p.parse_args(argv)


def shoot(page, out: Path) -> None:
    """A screenshot of the page's content, cropped to the elements drawn."""
    box = page.evaluate("""() => {
        const r = document.body.getBoundingClientRect();
        let right = 0, bottom = 0;
        for (const el of document.body.querySelectorAll("*")) {
            const b = el.getBoundingClientRect();
            if (b.width && b.height) { right = Math.max(right, b.right); bottom = Math.max(bottom, b.bottom); }
        }
        return [Math.ceil(right + 16), Math.ceil(bottom + 16)];
    }""")
    shot = Image.open(io.BytesIO(page.screenshot(type="png", full_page=True, clip={"x": 0, "y": 0, "width": box[0], "height": box[1]})))
    with atomic_path(out) as tmp:  # 256 colours: a third of the size, the page's flat colours kept
        shot.convert("RGB").quantize(256).save(tmp, format="png", optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")


def vit_screenshot(browser, path: Path, out: Path, patch, layer: int) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})  # the input and two models' maps in a row
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.explorer && window.explorer.state")
    layers = page.evaluate("DATA.models[0].layers")
    grid = page.evaluate("DATA.models[0].grid")
    if not 0 <= layer < layers or not (0 <= patch[0] < grid[0] and 0 <= patch[1] < grid[1]):
        raise UserError(f"--layer {layer} or --patch {patch[0]} {patch[1]} is outside the page's model "
                        f"({layers} layers, a {grid[0]}x{grid[1]} grid)")
    page.check("input[value=from]")
    page.fill("#layer", str(layer))
    x, y = point_in_cell(page, "grid", *patch, *grid)
    page.mouse.click(x, y)
    page.mouse.move(x, y)
    shoot(page, out)
    page.close()


def caption_screenshot(browser, path: Path, out: Path, word: int) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.explorer && window.explorer.state")
    words = page.locator("#words-0 button")
    if not 0 <= word < words.count():
        raise UserError(f"--word {word}: the caption has {words.count()} words (0..{words.count() - 1})")
    words.nth(word).click()
    shoot(page, out)
    page.close()


def main(argv=None):
    args = parse_args(argv)
    if not (args.vit or args.caption):
        raise UserError("nothing to take: pass --vit FILE, --caption FILE or both")
    for page in (args.vit, args.caption):
        if page and not Path(page).is_file():
            raise UserError(f"page not found: {page}")
    if not browser_available():
        raise UserError(f"screenshots {INSTALL_HINT}")
    out_dir = make_folder(args.out_dir)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        if args.vit:
            vit_screenshot(browser, Path(args.vit), out_dir / "explorer_vit.png", args.patch, args.layer)
        if args.caption:
            caption_screenshot(browser, Path(args.caption), out_dir / "explorer_caption.png", args.word)
        browser.close()


if __name__ == "__main__":
    run_main(main)
