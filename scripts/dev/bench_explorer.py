"""Size and hover speed of the explorer pages in headless Chromium.

Builds a random-weight model (as the other benchmarks do), writes its page with the real script
(`p1_vis_attention.py --html` for a ViT, `p2_vis_caption.py --html` for CATR) for one random image,
opens it from disk and hovers the patches (or the words) one after another. Per hover it reads two
times inside the page: the redraw (the page's drawing code, `window.explorer.lastRedrawMs`) and the
time from the mouse event to the next animation frame (the redraw and the frame it shows in). The
last line printed is one JSON object.

  python scripts/dev/bench_explorer.py --model L_16_imagenet1k --image_size 384
  python scripts/dev/bench_explorer.py --model tiny
  python scripts/dev/bench_explorer.py --caption catr
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError
import numpy as np
import torch
from PIL import Image

import p1_vis_attention
import p2_vis_caption
from benchlib import device_name, random_model
from browser import INSTALL_HINT, browser_available, launch_chromium
from models.checkpoint import model_config, save_checkpoint
from models.vit import MODEL_NAMES, check_image_size, check_model_name

# Dispatch a mousemove at (x, y) of an element, then wait for the next animation frame: the page
# has redrawn and the frame that shows it has begun.
HOVER_JS = """async ([selector, x, y]) => {
    const target = document.querySelector(selector);
    const box = target.getBoundingClientRect();
    const start = performance.now();
    target.dispatchEvent(new MouseEvent(target.tagName === "BUTTON" ? "mouseenter" : "mousemove",
        { clientX: box.left + x, clientY: box.top + y, bubbles: true }));
    await new Promise((done) => requestAnimationFrame(() => done()));
    return [window.explorer.lastRedrawMs, performance.now() - start];
}"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--model", default="tiny", metavar="NAME",
                      help=f"a ViT's page, one of: {', '.join(MODEL_NAMES)} (default %(default)s)")
    kind.add_argument("--caption", choices=("catr", "tiny"), metavar="CONFIG",
                      help="a CATR caption page instead: catr (the published architecture) or tiny")
    p.add_argument("--image_size", type=int, default=None, metavar="N",
                   help="ViT input size in pixels (default: the model's native size)")
    p.add_argument("--hovers", type=int, default=200, metavar="N", help="hovers timed (default %(default)s)")
    p.add_argument("--keep", metavar="FILE", help="also keep the page as FILE.html")
    return p.parse_args(argv)


def write_vit_page(folder: Path, name: str, image_size: int) -> Path:
    """The page of a random-weight `name` for one random image."""
    torch.manual_seed(0)
    model = random_model(name, image_size, torch.device("cpu"))
    save_checkpoint(folder / "random.pt", model, model_config(name, image_size), epoch=0)
    del model
    image = folder / "random.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), np.uint8)).save(image)
    p1_vis_attention.main(["--ckpt", str(folder / "random.pt"), "--images", str(image),
                           "--html", str(folder / "page.html"), "--device", "cpu"])
    return folder / "page.html"


def write_caption_page(folder: Path, config: str) -> Path:
    image = folder / "random.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), np.uint8)).save(image)
    p2_vis_caption.main(["--images", str(image), "--html", str(folder / "page.html"), "--random_weights",
                         "--config", config, "--max_steps", "12", "--device", "cpu"])
    return folder / "page.html"


def hover_times(page, caption: bool, hovers: int) -> list:
    """(redraw ms, event-to-frame ms) of each hover."""
    if caption:
        count = page.locator("#words button").count()
        targets = [(f"#words button:nth-child({1 + i % count})", 1, 1) for i in range(hovers)]
    else:
        page.check("input[value=from]")  # the map that changes with every patch
        rows, cols = page.evaluate("window.explorer.state && [document.getElementById('grid').height,"
                                   " document.getElementById('grid').width]")
        rng = np.random.default_rng(0)
        targets = [("#grid", float(rng.uniform(0, cols)), float(rng.uniform(0, rows))) for _ in range(hovers)]
    return [page.evaluate(HOVER_JS, list(target)) for target in targets]


def summary(values: list) -> dict:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
            "max": round(ordered[-1], 3)}


def main(argv=None):
    args = parse_args(argv)
    if args.hovers < 1:
        raise UserError(f"--hovers must be at least 1, not {args.hovers}")
    if not browser_available():
        raise UserError(f"this benchmark {INSTALL_HINT}")
    if args.caption is None:
        check_model_name(args.model)
        image_size = check_image_size(args.model, args.image_size)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        if args.caption:
            path = write_caption_page(Path(folder), args.caption)
        else:
            path = write_vit_page(Path(folder), args.model, image_size)
        write_s = time.perf_counter() - start
        size = path.stat().st_size
        if args.keep:
            Path(args.keep).write_bytes(path.read_bytes())
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            start = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_function("window.explorer && window.explorer.state")
            open_s = time.perf_counter() - start
            times = hover_times(page, args.caption is not None, args.hovers)
            browser.close()
    redraw, frame = summary([t[0] for t in times]), summary([t[1] for t in times])
    what = f"CATR {args.caption} caption page" if args.caption else f"{args.model} at {image_size} px"
    print(f"{what}: page {size / 1e6:.2f} MB written in {write_s:.1f} s, opened in {open_s:.2f} s; "
          f"{args.hovers} hovers: redraw median {redraw['median']:.2f} ms (max {redraw['max']:.2f}), "
          f"event to next frame median {frame['median']:.1f} ms (p95 {frame['p95']:.1f}, max {frame['max']:.1f})")
    print(json.dumps({"page": "caption" if args.caption else "vit", "model": args.caption or args.model,
                      "image_size": None if args.caption else image_size, "bytes": size,
                      "write_s": round(write_s, 2), "open_s": round(open_s, 3), "hovers": args.hovers,
                      "redraw_ms": redraw, "event_to_frame_ms": frame, "device_name": device_name(torch.device("cpu")),
                      "browser": "headless Chromium (software rendering)", "torch": torch.__version__,
                      "load_avg_1min": round(os.getloadavg()[0], 2),
                      "date": datetime.datetime.now().isoformat(timespec="seconds"),
                      "command": " ".join(["python", "scripts/dev/bench_explorer.py", *sys.argv[1:]])}))


if __name__ == "__main__":
    run_main(main)
