"""usage: python scripts/run_steps.py [--title TEXT] SCRIPT ARGS... [::: [--title TEXT] SCRIPT ARGS...]...

Run several scripts one after another in one Python process, each as `python SCRIPT ARGS...` would.

Every Python process of this repository first spends seconds importing torch and torchvision; a
pipeline of short steps (predict, draw, score) pays that once this way. Steps are separated by
`:::`; a step may begin with `--title TEXT`, printed as its heading. Each is echoed with its time;
the first that fails stops the rest, with its exit status.

  python scripts/run_steps.py p1_inference.py --ckpt run/best.pt --img_dir val --out_csv pred.csv \\
      ::: --title "the position embeddings" p1_vis_pos_embed.py --ckpt run/best.pt --out pos_embed.png
"""
import runpy
import shlex
import sys
import time
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path; Ctrl-C during the imports is one line)

SEPARATOR = ":::"


def split_steps(argv: list) -> list:
    """[(title or None, script, [args...]), ...] from `[--title T] script args ::: ...`."""
    steps, step = [], []
    for arg in argv + [SEPARATOR]:
        if arg != SEPARATOR:
            step.append(arg)
            continue
        title = None
        if step[:1] == ["--title"]:
            title, step = (step[1], step[2:]) if len(step) > 1 else (None, [])
        if not step:
            raise SystemExit(f"error: a step without a script in {shlex.join(argv)!r}; "
                             "write [--title TEXT] SCRIPT ARGS... ::: ...")
        steps.append((title, step[0], step[1:]))
        step = []
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
    for _, script, _ in steps:  # a typo in the last step is found before the first one runs
        if not Path(script).is_file():
            print(f"error: no script {script}", file=sys.stderr)
            return 2
    for title, script, args in steps:
        if title:
            print(f"== {title}", flush=True)
        print(f"$ python {shlex.join([script, *args])}", flush=True)
        start = time.perf_counter()
        status = run_step(script, args)
        print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
