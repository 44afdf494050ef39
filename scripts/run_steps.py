"""Run several scripts one after another in one Python process, each as `python SCRIPT ARGS...` would.

Every Python process of this repository first spends seconds importing torch and torchvision; a
pipeline of short steps (predict, draw, score) pays that once this way. Steps are separated by
`:::`. Each is echoed with its time; the first that fails stops the rest, with its exit status.

  python scripts/run_steps.py p1_inference.py --ckpt run/best.pt --img_dir val --out_csv pred.csv \\
      ::: p1_vis_pos_embed.py --ckpt run/best.pt --out pos_embed.png
"""
import runpy
import shlex
import sys
import time
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path; Ctrl-C during the imports is one line)

SEPARATOR = ":::"


def split_steps(argv: list) -> list:
    """[[script, args...], ...] from `script args ::: script args ...`; empty steps are refused."""
    steps, step = [], []
    for arg in argv + [SEPARATOR]:
        if arg != SEPARATOR:
            step.append(arg)
        elif step:
            steps.append(step)
            step = []
        else:
            raise SystemExit(f"error: an empty step in {shlex.join(argv)!r}; write SCRIPT ARGS... ::: SCRIPT ARGS...")
    return steps


def run_step(script: str, args: list) -> int:
    """The exit status of `python script args...`, run in this process."""
    argv, path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as Python puts a script's own folder first
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # sys.exit("message") prints it and exits with 1
            print(exit_.code, file=sys.stderr, flush=True)
            return 1
        return exit_.code or 0
    finally:
        sys.argv, sys.path[:] = argv, path
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    steps = split_steps(argv)
    for script, *_ in steps:  # a typo in the last step is found before the first one runs
        if not Path(script).is_file():
            print(f"error: no script {script}", file=sys.stderr)
            return 2
    for script, *args in steps:
        print(f"$ python {shlex.join([script, *args])}", flush=True)
        start = time.perf_counter()
        status = run_step(script, args)
        print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
