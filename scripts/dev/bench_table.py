"""Print Markdown tables from benchmark JSON lines: the machine when the files record it, one row per
benchmark, then, when the files hold what scripts/gpu_check.sh records, each target beside what was
measured.

  python scripts/dev/bench_table.py OUT_DIR/bench.jsonl OUT_DIR/checks.jsonl
"""
import argparse
import json
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main

from data.io import UserError
from benchlib import machine_line, markdown_table, targets_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="files with one benchmark JSON object per line")
    args = parser.parse_args(argv)
    records = []
    for path in map(Path, args.results):
        if not path.is_file():
            raise UserError(f"results file not found: {path}")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    raise UserError(f"{path}:{number} is not a JSON line") from None
    machines = [r for r in records if r.get("check") == "machine"]
    if machines:
        print(machine_line(machines[-1]) + "\n")
    print(markdown_table(records))
    if any("check" in r or r.get("benchmark") == "data" for r in records):
        print()
        print(targets_table(records))


if __name__ == "__main__":
    run_main(main)
