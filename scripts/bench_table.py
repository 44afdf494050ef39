"""Print Markdown tables from benchmark JSON lines: one row per benchmark, then, when the files hold
what scripts/gpu_check.sh records, each target beside what was measured.

  python scripts/bench_table.py OUT_DIR/bench.jsonl OUT_DIR/checks.jsonl
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.io import UserError, run_main  # noqa: E402
from models.benchmark import markdown_table, targets_table  # noqa: E402


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
    print(markdown_table(records))
    if any("check" in r or r.get("benchmark") == "data" for r in records):
        print()
        print(targets_table(records))


if __name__ == "__main__":
    run_main(main)
