"""Size and hover latency of the explorer pages in headless Chromium.

Builds a random-weight model (as the other benchmarks do; two with --compare), writes its page with
the real script (`p1_vis_attention.py --html` for a ViT, `p2_vis_caption.py --html` for CATR) for one
random image, opens it from disk and moves the mouse over the patches (or the words) one after
another, as real input events (Chromium's DevTools input, not events made in the page). Per hover it
reads inside the page: the redraw (the page's drawing code, `window.explorer.lastRedrawMs`) and the
time from the input event (its timestamp) to the end of the frame that shows it: a task queued from
the next animation frame runs after that frame is painted. The same for the arrow keys on the patch
grid (ViT page). The last line printed is one JSON object.

--random_maps writes the page from random maps of the model's shapes instead of running a model:
the same size and the same drawing work (both depend on the shapes only), in seconds where ViT-L/16
at 384 takes many minutes on a CPU.

  python scripts/dev/bench_explorer.py --model L_16_imagenet1k --image_size 384 --compare --random_maps
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
from models.figures.explorer import page_image, vit_image_entry, vit_model_entry, write_explorer
from models.figures.vit_page import PAGE_CLASSES, SCORED_AS, page_methods
from models.vit import MODEL_NAMES, check_image_size, check_model_name, model_entry

# In the page: for each input event of `type` on the element, the time from the event's timestamp to
# a task queued from the next animation frame, which runs once that frame is painted.
WATCH_JS = """([selector, type]) => {
    window.latencies = [];
    document.querySelector(selector).addEventListener(type, (event) => {
        const input = event.timeStamp;
        requestAnimationFrame(() => {
            const channel = new MessageChannel();
            channel.port1.onmessage = () =>
                window.latencies.push([window.explorer.lastRedrawMs, performance.now() - input]);
            channel.port2.postMessage(null);
        });
    }, { capture: true });
}"""
WAIT_JS = """(count) => new Promise((done) => {
    const poll = () => window.latencies.length >= count ? done() : setTimeout(poll, 1);
    poll();
})"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--model", default="tiny", metavar="NAME",
                      help=f"a ViT's page, one of: {', '.join(MODEL_NAMES)} (default %(default)s)")
    kind.add_argument("--caption", choices=("catr", "tiny"), metavar="CONFIG",
                      help="a CATR caption page instead: catr (the published architecture) or tiny")
    p.add_argument("--image_size", type=int, default=None, metavar="N",
                   help="ViT input size in pixels (default: the model's native size)")
    p.add_argument("--compare", action="store_true", help="a page of two models side by side (ViT pages)")
    p.add_argument("--random_maps", action="store_true",
                   help="ViT pages: random maps of the model's shapes instead of a model's (the same size and "
                        "drawing work)")
    p.add_argument("--hovers", type=int, default=200, metavar="N", help="hovers timed (default %(default)s)")
    p.add_argument("--keep", metavar="FILE", help="also keep the page as FILE.html")
    return p.parse_args(argv)


def write_vit_page(folder: Path, name: str, image_size: int, compare: bool) -> Path:
    """The page of a random-weight `name` (two of them with `compare`) for one random image."""
    argv = []
    for seed in range(1 + compare):
        torch.manual_seed(seed)
        model = random_model(name, image_size, torch.device("cpu"))
        save_checkpoint(folder / f"random{seed}.pt", model, model_config(name, image_size), epoch=0)
        del model
        argv += ["--compare" if seed else "--ckpt", str(folder / f"random{seed}.pt")]
    image = folder / "random.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), np.uint8)).save(image)
    p1_vis_attention.main(argv + ["--images", str(image), "--html", str(folder / "page.html"), "--device", "cpu"])
    return folder / "page.html"


def write_random_vit_page(folder: Path, name: str, image_size: int, compare: bool) -> Path:
    """The page of random maps of the shapes of `name` at `image_size` (two models with `compare`, each
    with its own pixels: both images stored, the larger page)."""
    config = model_entry(name)["config"]
    grid = (image_size // config["patches"][0],) * 2
    layers, heads, tokens = config["num_layers"], config["num_heads"], 1 + grid[0] * grid[1]
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    models, entries = [], []
    for i in range(1 + compare):
        attentions = [torch.randn(heads, tokens, tokens, generator=generator).mul(3).softmax(-1) for _ in range(layers)]
        counts = {m["name"]: PAGE_CLASSES if m["per_class"] else 1 for m in page_methods()}
        methods = [{"name": name, "maps": torch.rand(count, *grid, generator=generator),
                    "captions": [f"{name} for class {k}" for k in range(count)]} for name, count in counts.items()]
        image = rng.integers(0, 256, (image_size, image_size, 3), np.uint8)
        entries.append(vit_image_entry(image, attentions, [(k, f"class {k}", 0.2) for k in range(PAGE_CLASSES)],
                                       methods, grid, torch.rand(layers, heads, generator=generator)))
        models.append(vit_model_entry(f"random maps of {name} at {image_size} px", grid, layers, heads,
                                      torch.rand(grid[0] * grid[1], grid[0] * grid[1], generator=generator) * 2 - 1))
    write_explorer(folder / "page.html", "vit", f"random maps of {name}", models, [page_image("random.png", entries)],
                   methods=page_methods(), scored=SCORED_AS)
    return folder / "page.html"


def write_caption_page(folder: Path, config: str) -> Path:
    image = folder / "random.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), np.uint8)).save(image)
    p2_vis_caption.main(["--images", str(image), "--html", str(folder / "page.html"), "--random_weights",
                         "--config", config, "--max_steps", "12", "--device", "cpu"])
    return folder / "page.html"


def hover_times(page, caption: bool, hovers: int) -> list:
    """(redraw ms, input-to-paint ms) of each hover: the mouse moved to another patch (or word)."""
    if caption:
        buttons = page.locator("#words-0 button")
        boxes = [buttons.nth(i).bounding_box() for i in range(buttons.count())]
        points = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in boxes]
        page.evaluate(WATCH_JS, ["#words-0", "mouseover"])
        targets = [points[i % len(points)] for i in range(hovers)]
    else:
        page.check("input[value=from]")  # the map that changes with every patch
        box = page.locator("#grid").bounding_box()
        grid = page.evaluate("DATA.models[0].grid")
        rng = np.random.default_rng(0)
        cells = [(int(rng.integers(grid[0])), int(rng.integers(grid[1]))) for _ in range(hovers)]
        cells = [cell if i == 0 or cell != cells[i - 1] else ((cell[0] + 1) % grid[0], cell[1])
                 for i, cell in enumerate(cells)]  # each move lands on another patch, so each redraws
        targets = [(box["x"] + (c + 0.5) * box["width"] / grid[1], box["y"] + (r + 0.5) * box["height"] / grid[0])
                   for r, c in cells]
        page.evaluate(WATCH_JS, ["#grid", "mousemove"])
    for i, (x, y) in enumerate(targets):
        page.mouse.move(x, y)
        page.evaluate(WAIT_JS, i + 1)
    return page.evaluate("window.latencies")


def key_times(page, presses: int) -> list:
    """(redraw ms, input-to-paint ms) of each arrow key on the ViT page's patch grid."""
    page.mouse.move(0, 0)
    page.focus("#grid")
    page.evaluate(WATCH_JS, ["#grid", "keydown"])
    for i in range(presses):
        page.keyboard.press(("ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp")[(i // 3) % 4])
        page.evaluate(WAIT_JS, i + 1)
    return page.evaluate("window.latencies")


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
    if args.compare and args.caption:
        raise UserError("--compare makes a ViT page of two models; the caption page is timed with one")
    if args.random_maps and args.caption:
        raise UserError("--random_maps makes a ViT page; the caption page is timed with a model's maps")
    if args.caption is None:
        check_model_name(args.model)
        image_size = check_image_size(args.model, args.image_size)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        if args.caption:
            path = write_caption_page(Path(folder), args.caption)
        else:
            write = write_random_vit_page if args.random_maps else write_vit_page
            path = write(Path(folder), args.model, image_size, args.compare)
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
            keys = [] if args.caption else key_times(page, min(args.hovers, 60))
            browser.close()
    redraw, paint = summary([t[0] for t in times]), summary([t[1] for t in times])
    key_paint = summary([t[1] for t in keys]) if keys else None
    what = f"CATR {args.caption} caption page" if args.caption else \
        f"{args.model} at {image_size} px{', two models' if args.compare else ''}{', random maps' * args.random_maps}"
    print(f"{what}: page {size / 1e6:.2f} MB written in {write_s:.1f} s, opened in {open_s:.2f} s; "
          f"{args.hovers} hovers: redraw median {redraw['median']:.2f} ms (max {redraw['max']:.2f}), "
          f"input to paint median {paint['median']:.1f} ms (p95 {paint['p95']:.1f}, max {paint['max']:.1f})" +
          (f"; {len(keys)} arrow keys: input to paint median {key_paint['median']:.1f} ms "
           f"(p95 {key_paint['p95']:.1f})" if keys else ""))
    print(json.dumps({"page": "caption" if args.caption else "vit", "model": args.caption or args.model,
                      "image_size": None if args.caption else image_size, "models": 1 + args.compare,
                      "random_maps": args.random_maps, "bytes": size,
                      "write_s": round(write_s, 2), "open_s": round(open_s, 3), "hovers": args.hovers,
                      "redraw_ms": redraw, "input_to_paint_ms": paint, "key_input_to_paint_ms": key_paint,
                      "device_name": device_name(torch.device("cpu")),
                      "browser": "headless Chromium (software rendering)", "torch": torch.__version__,
                      "load_avg_1min": round(os.getloadavg()[0], 2),
                      "date": datetime.datetime.now().isoformat(timespec="seconds"),
                      "command": " ".join(["python", "scripts/dev/bench_explorer.py", *sys.argv[1:]])}))


if __name__ == "__main__":
    run_main(main)
