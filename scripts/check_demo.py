"""Check the demo's numbers against the ranges they take on every CPU the demo was run on.

Trained numbers differ from one CPU to another in their last digits and more (the kernels round
differently, and training compounds it), so the demo is judged by ranges, not by one machine's
digits: each check names what it reads, the value found and the range it must fall in. Exit
status 1 when any number is outside its range, 2 when a file is missing.

  python scripts/check_demo.py demo_out
"""
import argparse
import csv
import json
from pathlib import Path

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
from data.io import UserError


def best(metrics_csv: Path, column: str) -> float:
    with open(metrics_csv, newline="") as f:
        return max(float(row[column]) for row in csv.DictReader(f))


def csv_accuracy(predictions: Path) -> float:
    """% of `filename,label` rows whose label is the `{label}_{id}` file's own."""
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    return 100 * sum(row["filename"].split("_")[0] == row["label"] for row in rows) / len(rows)


def method_scores(report: Path, method: str, key: str) -> float:
    return json.loads(report.read_text())["methods"][method][key]


# (what, how to read it from the demo's folder, lowest, highest). The ranges hold every value seen
# on the CPUs in docs/performance.md (AMD EPYC with AVX2 and Intel Xeon with AVX-512) with room.
CHECKS = (
    ("run a: best validation accuracy (%)", lambda out: best(out / "run_a/metrics.csv", "val_acc"), 80, 95),
    ("run b: best validation accuracy (%), the fine-tuning recipe from scratch",
     lambda out: best(out / "run_b/metrics.csv", "val_acc"), 2, 20),
    ("val_pred.csv: accuracy (%) minus run a's best",
     lambda out: csv_accuracy(out / "val_pred.csv") - best(out / "run_a/metrics.csv", "val_acc"), -0.01, 0.01),
    ("rollout: positive perturbation AUC, random's minus rollout's (points)",
     lambda out: method_scores(out / "explanations.json", "random", "positive_auc")
     - method_scores(out / "explanations.json", "rollout", "positive_auc"), 10, 60),
    ("captioner: best validation BLEU-4 (the most frequent caption: 0.543)",
     lambda out: best(out / "captioner/metrics.csv", "val_bleu4"), 0.6, 1.0),
    ("captioner: best validation CIDEr-D (the most frequent caption: 0.68)",
     lambda out: best(out / "captioner/metrics.csv", "val_cider"), 2.0, 6.0),
    ("grounding: relevancy's attention correctness over the uniform map's (x)",
     lambda out: method_scores(out / "grounding.json", "relevancy", "correctness")
     / method_scores(out / "grounding.json", "uniform", "correctness"), 2, 10),
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="the folder scripts/demo.sh wrote")
    out = Path(parser.parse_args(argv).out_dir)
    failed = 0
    for what, read, low, high in CHECKS:
        try:
            value = read(out)
        except (OSError, KeyError, ValueError) as err:
            raise UserError(f"{out} does not hold a finished demo ({what}: {err})")
        ok = low <= value <= high
        failed += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {value:.4g} in [{low}, {high}]")
    if failed:
        raise SystemExit(f"error: {failed} of the demo's {len(CHECKS)} numbers are outside their ranges")
    print(f"all {len(CHECKS)} numbers in their ranges")


if __name__ == "__main__":
    run_main(main)
