"""The benchmarks' library: one timing loop, one record header, and the ViT step benchmark.

`scripts/dev/bench_train.py` and `bench_infer.py` are `run_benchmark`; the other benchmarks here share
its timing loop (`time_alternating`) and record header (`record_header`).

The ViT step benchmark builds a package ViT with random weights directly on the device, feeds it one random
batch over and over (so the data pipeline is not measured), times each step after a warm-up, and
reports images/s, achieved TFLOP/s (FLOPs counted from the configuration, `scripts/dev/flops.py`), the
fraction of the device's dense peak (`scripts/dev/hardware.py`), peak memory, with `--compile` the
compile time (the first step's time less a steady step's) and, as the last line, one JSON object. With attention 'both' the two attention paths share the weights and alternate step by
step in one process, so their ratio is not skewed by a machine that got busier between two runs.
"""
import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from data.io import UserError
from flops import forward_flops, training_flops
from hardware import peak_tflops
from models.attention import ATTENTION_MODES, enable_grad_checkpointing, set_attention
from models.training.optim import build_optimizer
from models.training.runtime import PRECISIONS, autocast, compile_blocks, resolve_device, run_precision
from models.vit import MODEL_NAMES, check_model_name, native_image_size, random_vit

TRAIN_IMAGES = 3680  # p1_data/train: one epoch of the course's Pets split
TEST_IMAGES = 2169   # the private test set that inference must label within 10 minutes
BOTH = ("fast", "explicit")  # what --attention both compares


def add_step_arguments(parser: argparse.ArgumentParser, model: str, batch_size: int, steps: int, warmup: int,
                       device) -> None:
    """The flags of every benchmark of a ViT's steps, with this benchmark's defaults."""
    parser.add_argument("--model", default=model, metavar="NAME",
                        help=f"model name, one of: {', '.join(MODEL_NAMES)} (default %(default)s)")
    parser.add_argument("--image_size", type=int, default=None, metavar="N",
                        help="input size in pixels (default: the model's native size)")
    parser.add_argument("--batch_size", type=int, default=batch_size, metavar="N",
                        help="images per step (default %(default)s)")
    parser.add_argument("--device", default=device,
                        help=f"cpu, cuda or cuda:N (default: {device or 'cuda if present'})")
    parser.add_argument("--steps", type=int, default=steps, metavar="N",
                        help="timed steps of each variant (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=warmup, metavar="N",
                        help="untimed steps of each variant first (default %(default)s)")


def check_step_arguments(args) -> None:
    check_model_name(args.model)
    for flag in ("batch_size", "steps", "image_size"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be at least 1, not {value}")
    if args.warmup < 0:
        raise UserError(f"--warmup must be 0 or more, not {args.warmup}")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of bench_train.py and bench_infer.py."""
    add_step_arguments(parser, "L_16_imagenet1k", batch_size=8, steps=10, warmup=2, device=None)
    parser.add_argument("--attention", default="fast", choices=ATTENTION_MODES + ("both",),
                        help="fast (one q/k/v matmul, scaled_dot_product_attention), sdpa (the fused "
                             "kernel after three q/k/v matmuls), explicit (the package's own), or "
                             "both: alternate fast and explicit step by step on the same weights and "
                             "print their ratio (default %(default)s)")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="bf16 autocast or plain fp32 (default: bf16 on cuda, fp32 on cpu)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile each transformer block, as p1_train.py --compile does")
    parser.add_argument("--peak_tflops", type=float, default=None, metavar="X",
                        help="the device's dense peak TFLOP/s at this precision, for a GPU the "
                             "built-in table does not know")


def check_arguments(args) -> None:
    check_step_arguments(args)
    if args.compile and args.attention == "both":
        raise UserError("--compile with --attention both would reuse one compiled graph for two "
                        "attention paths; compare compiled paths in two runs")


def random_model(name: str, image_size: int, device: torch.device) -> torch.nn.Module:
    """A package ViT with random weights made on `device` itself (no copy of a large model)."""
    with device:
        model = random_vit(name, image_size=image_size, head_std=0.02)
    return model


def random_batch(batch_size: int, image_size: int, num_classes: int, device: torch.device):
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    return images, labels


def training_step(model, optimizer, images, labels, device, precision):
    """One real training step as a closure: forward, loss, backward, optimizer step."""
    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision, training=True, cpu_bf16=True):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
    return step


def inference_step(model, images, device, precision):
    def step():
        with torch.inference_mode(), autocast(device, precision, cpu_bf16=True):
            model(images)
    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple:
    """`fn()`'s result and its wall time in seconds, with the GPU's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def time_alternating(steps: dict, repeats: int, warmup: int, device: torch.device, before=None, after=None,
                     results: dict | None = None) -> dict:
    """Seconds of each timed call of each named step: the one timing loop of every benchmark here.

    The steps take turns, so a machine that gets busier affects all of them alike. `before(name)` and
    `after(name)` run outside the timed region around each call; `results`, when given, receives each
    step's last result.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            if before:
                before(name)
            result, elapsed = timed(step, device)
            seconds[name].append(elapsed)
            if results is not None:
                results[name] = result
            if after:
                after(name)
    return seconds


def time_modes(step, model, modes, steps: int, warmup: int, device: torch.device) -> dict:
    """Seconds of each timed step, of the first step (a warm-up one, or the first timed one without
    warm-up: where compiling happens) and the peak memory (MB) per attention mode.

    The modes alternate step by step on the same model; on CUDA the peak is tracked per mode, on
    the CPU it is the process's peak resident memory, shared by all modes.
    """
    peak = dict.fromkeys(modes, 0.0)

    def switch(mode):
        set_attention(model, mode)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def track(mode):
        peak[mode] = max(peak[mode], peak_memory_mb(device))

    first = {}
    for mode in modes:  # each mode warms up its own kernels
        switch(mode)
        for _ in range(warmup):
            first.setdefault(mode, timed(step, device)[1])
    seconds = time_alternating({mode: step for mode in modes}, steps, 0, device, before=switch, after=track)
    return {mode: {"seconds": seconds[mode], "first_step_s": first.get(mode, seconds[mode][0]),
                   "peak_mem_mb": peak[mode]} for mode in modes}


def record_header(benchmark: str, script: str, argv, device: torch.device) -> dict:
    """The fields every benchmark record starts with, one name each: what ran, when, on what, and how
    busy the machine was (other work on it skews every figure)."""
    return {
        "benchmark": benchmark,
        "command": " ".join([script, *argv]),
        "date": datetime.date.today().isoformat(),
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory PyTorch's tensors held; CPU: the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def largest_fitting(fits, start: int, limit: int = 4096) -> int:
    """The largest batch in [1, limit] for which `fits(batch)` is True (0 if none).

    Doubles from `start` until a batch fails, then bisects between the last that fitted and the
    first that failed; assumes that a batch fits whenever a larger one does.
    """
    fitted, failed = 0, None
    batch = start
    while batch <= limit:
        if not fits(batch):
            failed = batch
            break
        fitted, batch = batch, batch * 2
    if failed is None:
        return fitted
    while failed - fitted > 1:
        middle = (fitted + failed) // 2
        if fits(middle):
            fitted = middle
        else:
            failed = middle
    return fitted


def fits_in_memory(run) -> bool:
    """Whether `run()` completes without a CUDA out-of-memory error; frees the cache after."""
    try:
        run()
        ok = True
    except torch.cuda.OutOfMemoryError:
        ok = False  # leaving the except block drops the traceback and the tensors it holds
    gc.collect()
    torch.cuda.empty_cache()
    return ok


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu} CPU, {torch.get_num_threads()} threads"


def _round(x: float, digits: int = 4) -> float:
    """`x` to `digits` significant digits, so tiny models' figures do not round to zero."""
    return float(f"{x:.{digits}g}")


def mode_figures(timing: dict, batch_size: int, flops_per_image: int, peak: float | None) -> dict:
    seconds = timing["seconds"]
    img_per_s = batch_size * len(seconds) / sum(seconds)
    tflops = img_per_s * flops_per_image / 1e12
    return {
        "img_per_s": _round(img_per_s),
        "step_s_median": _round(statistics.median(seconds)),
        "step_s_min": _round(min(seconds)),  # the least disturbed step, on a shared machine
        "step_s": [_round(t) for t in seconds],
        "first_step_s": _round(timing["first_step_s"]),
        "tflops": _round(tflops),
        "peak_fraction": None if peak is None else _round(tflops / peak, 3),
        "peak_mem_mb": round(timing["peak_mem_mb"], 1),
    }


def run_benchmark(args, kind: str, argv: list) -> dict:
    """Build, time and describe one benchmark; `kind` is 'train' or 'infer'."""
    check_arguments(args)
    device = resolve_device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    image_size = args.image_size or native_image_size(args.model)
    find_max = getattr(args, "find_max_batch", False)
    if find_max and device.type != "cuda":
        raise UserError("--find_max_batch needs a CUDA device: on the CPU memory is not the limit")

    model = random_model(args.model, image_size, device)
    flops_per_image = training_flops(model) if kind == "train" else forward_flops(model)
    if kind == "train":
        model.train()
        if args.grad_checkpointing:
            enable_grad_checkpointing(model)
        optimizer = build_optimizer(model, args.optimizer, lr=1e-4, weight_decay=3e-4,
                                    momentum=0.9, device=device)
    else:
        model.eval()
    if args.compile:
        compile_blocks(model)
    modes = BOTH if args.attention == "both" else (args.attention,)

    def make_step(batch_size):
        images, labels = random_batch(batch_size, image_size, model.fc.out_features, device)
        if kind == "train":
            return training_step(model, optimizer, images, labels, device, precision)
        return inference_step(model, images, device, precision)

    batch_size, max_batch = args.batch_size, None
    if find_max:
        set_attention(model, modes[0])

        def two_steps(batch):
            step = make_step(batch)
            step()
            step()  # the second step holds the optimizer state too
            synchronize(device)
        max_batch = largest_fitting(lambda b: fits_in_memory(lambda: two_steps(b)), args.batch_size)
        if max_batch == 0:
            raise UserError(f"not even one image per step fits on {device_name(device)}")
        batch_size = max_batch
    try:
        timings = time_modes(make_step(batch_size), model, modes, args.steps, args.warmup, device)
    except torch.cuda.OutOfMemoryError:
        raise UserError(f"a batch of {batch_size} does not fit on {device_name(device)}; try a smaller "
                        f"--batch_size, --grad_checkpointing or --find_max_batch") from None

    name = device_name(device)
    peak = args.peak_tflops or peak_tflops(name, precision)
    figures = {mode: mode_figures(timings[mode], batch_size, flops_per_image, peak) for mode in modes}
    record = {
        **record_header(kind, f"scripts/dev/bench_{kind}.py", argv, device),
        "model": args.model,
        "image_size": image_size,
        "batch_size": batch_size,
        "max_batch": max_batch,
        "attention": args.attention,
        "precision": run_precision(device, precision, training=kind == "train", cpu_bf16=True),
        "compile": args.compile,
        "grad_checkpointing": getattr(args, "grad_checkpointing", False),
        "optimizer": getattr(args, "optimizer", None),
        "steps": args.steps,
        "warmup": args.warmup,
        "flop_per_image": flops_per_image,
        "peak_tflops": peak,
        **figures["fast" if args.attention == "both" else args.attention],  # 'both': the fast path's
    }
    # Compiling happens in the first step; the rest of that step is one steady step.
    record["compile_s"] = (_round(max(0.0, record["first_step_s"] - record["step_s_median"]))
                           if args.compile else None)
    images_per_pass = TRAIN_IMAGES if kind == "train" else TEST_IMAGES
    record["epoch_s" if kind == "train" else "test_set_s"] = _round(images_per_pass / record["img_per_s"])
    if args.attention == "both":
        record.update(figures)
        record["fast_over_explicit"] = _round(figures["fast"]["img_per_s"] / figures["explicit"]["img_per_s"], 3)
        record["fast_over_explicit_best_step"] = _round(
            figures["explicit"]["step_s_min"] / figures["fast"]["step_s_min"], 3)
    return record


def print_report(record: dict, out=None) -> None:
    """Readable lines, then the record as one JSON object on the last line."""
    out = out or sys.stdout
    r = record
    what = "training step" if r["benchmark"] == "train" else "inference"
    extras = [f"optimizer {r['optimizer']}"] if r["benchmark"] == "train" else []
    extras += ["torch.compile"] * r["compile"] + ["grad checkpointing"] * r["grad_checkpointing"]
    print(f"{r['model']} at {r['image_size']} px, {what}, batch {r['batch_size']}, {r['precision']}"
          + "".join(f", {e}" for e in extras), file=out)
    print(f"device: {r['device_name']} (torch {r['torch']}, load average {r['load_avg_1min']}); "
          f"{r['flop_per_image'] / 1e9:.4g} GFLOP per image", file=out)
    if r["max_batch"] is not None:
        print(f"largest batch that fits: {r['max_batch']}", file=out)
    modes = BOTH if r["attention"] == "both" else (r["attention"],)
    for mode in modes:
        f = r[mode] if r["attention"] == "both" else r
        fraction = "n/a" if f["peak_fraction"] is None else f"{100 * f['peak_fraction']:.1f}%"
        peak = "unknown" if r["peak_tflops"] is None else f"{r['peak_tflops']:g}"
        print(f"{mode:>8} attention: {f['img_per_s']:.2f} img/s, {f['tflops']:.4g} TFLOP/s "
              f"= {fraction} of peak ({peak} TFLOP/s), peak memory {f['peak_mem_mb']:.0f} MB", file=out)
    if r["benchmark"] == "train":
        print(f"one epoch of {TRAIN_IMAGES} images: {r['epoch_s']:.1f} s", file=out)
    else:
        print(f"{TEST_IMAGES} test images: {r['test_set_s']:.1f} s", file=out)
    if r["compile"]:
        print(f"compiling: {r['compile_s']:.1f} s (first step {r['first_step_s']:.2f} s, "
              f"steady step {r['step_s_median']:.3g} s)", file=out)
    if r["attention"] == "both":
        print(f"fast / explicit: {r['fast_over_explicit']:.2f}x in images/s, "
              f"{r['fast_over_explicit_best_step']:.2f}x between the fastest steps", file=out)
    print(json.dumps(record), file=out, flush=True)


# What makes an eager row the match of a compiled one: everything but `compile`.
SAME_SETTINGS = ("benchmark", "device_name", "model", "image_size", "batch_size", "attention", "precision",
                 "grad_checkpointing", "optimizer")


def compile_payoff(record: dict, records: list) -> str:
    """A compiled row's compile time and after how many passes over its data (epochs of the
    TRAIN_IMAGES training images, or test sets of TEST_IMAGES images for inference) the time it saves
    has paid for it, against the fastest eager row of the same settings in `records`; '' for an
    eager row."""
    if not record.get("compile"):
        return ""
    if record.get("compile_s") is None:
        return "not recorded"
    eager = [r["img_per_s"] for r in records if not r.get("compile") and "error" not in r
             and all(r.get(key) == record.get(key) for key in SAME_SETTINGS)]
    shown = f"{record['compile_s']:.3g} s"
    if not eager:
        return f"{shown}, no eager row"
    train = record["benchmark"] == "train"
    images, unit = (TRAIN_IMAGES, "epochs") if train else (TEST_IMAGES, "test sets")
    saved = images / max(eager) - images / record["img_per_s"]  # seconds per pass
    return f"{shown}, never" if saved <= 0 else f"{shown}, after {record['compile_s'] / saved:.3g} {unit}"


def markdown_table(records: list) -> str:
    """README rows from benchmark records; a 'both' record gives one row per attention path. Records
    of other kinds (data loading, whole-script checks) are left to `targets_table`. A compiled row
    says when compiling pays for itself (`compile_payoff`)."""
    lines = ["| device | date | command | attention | img/s | TFLOP/s | of peak | peak memory (MB) "
             f"| epoch / test set (s) | compile: pays off after (epoch = {TRAIN_IMAGES} images) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r.get("benchmark") not in ("train", "infer") and "error" not in r:
            continue
        if "error" in r:
            lines.append(f"| {r.get('device_name', '?')} | {r.get('date', '?')} | `{r['command']}` "
                         f"| | failed: {r['error']} | | | | | |")
            continue
        for mode in BOTH[::-1] if r["attention"] == "both" else (r["attention"],):
            f = r[mode] if r["attention"] == "both" else r
            fraction = "n/a" if f["peak_fraction"] is None else f"{100 * f['peak_fraction']:.1f}%"
            span = (TRAIN_IMAGES if r["benchmark"] == "train" else TEST_IMAGES) / f["img_per_s"]
            lines.append(f"| {r['device_name']} | {r['date']} | `{r['command']}` | {mode} {r['precision']} "
                         f"| {f['img_per_s']:.4g} | {f['tflops']:.3g} | {fraction} | {f['peak_mem_mb']:.0f} "
                         f"| {span:.4g} | {compile_payoff(r, records)} |")
    return "\n".join(lines)


def _model_row(records, kind, attention, precision, batch_size=None, compiled=False):
    """The img/s of the benchmark row with these settings (the best if several), or None."""
    rates = [r["img_per_s"] for r in records if r.get("benchmark") == kind and r.get("attention") == attention
             and r.get("precision") == precision and r.get("compile") == compiled
             and (batch_size is None or r.get("batch_size") == batch_size)]
    return max(rates) if rates else None


def _ratio(a, b):
    return None if a is None or not b else a / b


def machine_line(machine: dict) -> str:
    """The machine a run measured, in one sentence (from scripts/dev/machine.py's record)."""
    gpus = "; ".join(machine.get("gpus") or []) or "no GPU listed by nvidia-smi"
    return (f"Machine: {gpus}; {machine.get('cpus_usable')} of {machine.get('cpus')} CPUs usable, "
            f"{machine.get('memory_gib')} GiB memory, /dev/shm {machine.get('shm_gib')} GiB; "
            f"Python {machine.get('python')}, torch {machine.get('torch')}, CUDA {machine.get('cuda')}.")


def targets_table(records: list) -> str:
    """What a GPU check must show, measured against each target, as Markdown rows.

    Reads the benchmark rows (`bench_train.py`, `bench_infer.py`) and the check records that
    `scripts/gpu_check.sh` writes (data loading, p1_train.py epochs, p1_inference.sh, the CUDA tests).
    """
    checks = {r["check"]: r for r in records if "check" in r}
    data = next((r for r in records if r.get("benchmark") == "data"), {})
    fast = {(b, c): _model_row(records, "train", "fast", "bf16", b, c) for b in (16, 64) for c in (False, True)}
    best_fast = max((v for v in fast.values() if v is not None), default=None)
    explicit = _model_row(records, "train", "explicit", "fp32")
    sdpa = _model_row(records, "train", "sdpa", "bf16", 64)
    run = checks.get("p1_train", {})
    last_epoch = run.get("train_img_per_s", [None])[-1]
    inference = checks.get("p1_inference", {})
    tests = checks.get("cuda_tests", {})
    rows = [
        ("data loading per worker, uint8 / float path", _ratio(data.get("uint8_img_per_s"), data.get("float_img_per_s")),
         ">= 1.5x", lambda x: x >= 1.5),
        ("data loading per worker, cached / float path", _ratio(data.get("cached_img_per_s"), data.get("float_img_per_s")),
         ">= 1.5x", lambda x: x >= 1.5),
        ("training img/s, fast bf16, best row", best_fast, ">= 400", lambda x: x >= 400),
        ("fast bf16 best / explicit fp32 (batch 16)", _ratio(best_fast, explicit), ">= 5x", lambda x: x >= 5),
        ("fused q/k/v / three projections (batch 64)", _ratio(fast[64, False], sdpa), "> 1: keep fused", lambda x: x > 1),
        ("compiled / eager, batch 16", _ratio(fast[16, True], fast[16, False]), "> 1: worth compiling", lambda x: x > 1),
        ("compiled / eager, batch 64", _ratio(fast[64, True], fast[64, False]), "> 1: worth compiling", lambda x: x > 1),
        ("p1_train.py last epoch img/s / benchmark (batch 16)", _ratio(last_epoch, fast[16, False]),
         ">= 0.85", lambda x: x >= 0.85),
        (f"p1_inference.sh, {inference.get('images', '?')} JPEGs, start to CSV (s)", inference.get("seconds"),
         "< 30", lambda x: x < 30),
    ]
    lines = ["| what | measured | target | met |", "|---|---|---|---|"]
    if any(r.get("device") == "cpu" for r in records if r.get("benchmark") in ("train", "infer")):
        lines.insert(0, "Measured on the CPU (a dry run): the targets are for ViT-L/16 at 384 on an H100.\n")
    for what, value, target, test in rows:
        shown = "not measured" if value is None else f"{value:.3g}"
        met = "" if value is None else ("yes" if test(value) else "no")
        lines.append(f"| {what} | {shown} | {target} | {met} |")
    tests_shown = {"ok": tests.get("result"), "failed": f"failed: {tests.get('reason', '')}",
                   "skipped": f"skipped: {tests.get('reason', '')}"}.get(tests.get("status"), "not run")
    lines.append(f"| CUDA tests | {tests_shown} | all pass | "
                 f"{'yes' if tests.get('status') == 'ok' else 'no' if tests else ''} |")
    for name, r in checks.items():
        if r.get("status") in ("failed", "skipped"):
            lines.append(f"| step {name} | {r['status']}: {r.get('reason', '')} | | |")
    return "\n".join(lines)
