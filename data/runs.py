"""Run folders of p1_train.py (`config.json`, `metrics.csv`): writing the metrics, reading runs back,
and comparing their settings.

The comparison shows the settings that differ between runs and leaves out the ones that say where
or how a run was executed rather than what it learned (IGNORED_SETTINGS). The final result is the
run with the highest best validation accuracy; a tie goes to the run listed first.
"""
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .io import UserError

# Where the run wrote and how the program ran: none of them changes what the model learns
# (the attention kernel, compilation, checkpointing and the image cache compute the same function).
IGNORED_SETTINGS = ("output_dir", "resume", "num_workers", "cache_images", "progress", "device", "attention", "compile",
                    "grad_checkpointing", "class_names", "mean", "std")
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
REQUIRED_COLUMNS = ("epoch", "train_loss", "val_acc")  # what the comparison reads
_MISSING = object()  # tells a setting absent from a config from one set to None


@dataclass
class Run:
    path: Path
    config: dict
    metrics: list  # one dict per epoch, values as numbers, in file order

    @property
    def best(self) -> dict:
        """The epoch with the highest validation accuracy (the first one on a tie), as p1_train keeps best.pt."""
        return max(self.metrics, key=lambda row: row["val_acc"])


def metrics_csv(history: list, columns=METRIC_COLUMNS) -> str:
    """metrics.csv as text: one row per epoch, `columns`, floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in columns})
    return buf.getvalue()


def read_run(folder) -> Run:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"run folder not found: {folder}")
    return Run(folder, read_config(folder / "config.json"), _read_metrics(folder / "metrics.csv"))


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found: is {path.parent} a run folder written by p1_train.py?") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} does not hold a JSON object of settings")
    return config


def _read_metrics(path: Path) -> list:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path} lacks the column(s) {', '.join(missing)}")
            rows = []
            for row in reader:
                fields = [v for k, v in row.items() if k is not None and v is not None] + row.get(None, [])
                if len(fields) != len(reader.fieldnames):
                    raise UserError(f"{path} line {reader.line_num} has {len(fields)} fields, "
                                    f"its header {len(reader.fieldnames)}")
                rows.append({k: _number(v) for k, v in row.items()})
    except FileNotFoundError:
        raise UserError(f"{path} not found: the run has not finished an epoch yet") from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if not rows:
        raise UserError(f"{path} holds no epochs yet")
    return rows


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def differing_settings(configs: list) -> list:
    """The setting names whose values are not the same in all configs (a missing one counts as different)."""
    names = []
    for config in configs:
        names += [k for k in config if k not in names and k not in IGNORED_SETTINGS]
    return [k for k in names if any(c.get(k, _MISSING) != configs[0].get(k, _MISSING) for c in configs)]


def shared_settings(configs: list) -> dict:
    differ = set(differing_settings(configs))
    return {k: v for k, v in configs[0].items() if k not in differ and k not in IGNORED_SETTINGS}


def run_names(runs: list) -> list:
    """Folder names, or the paths as given when two folders share a name."""
    names = [run.path.name for run in runs]
    return names if len(set(names)) == len(names) else [str(run.path) for run in runs]


def final_run_index(runs: list) -> int:
    best = [run.best["val_acc"] for run in runs]
    return best.index(max(best))


def format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def summary_markdown(runs: list) -> str:
    """A table of the differing settings and the results, the final result marked, and the shared settings."""
    configs = [run.config for run in runs]
    settings = differing_settings(configs)
    final = final_run_index(runs)
    names = run_names(runs)
    header = ["run", *settings, "epochs run", "best epoch", "best val acc (%)", "final result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for i, (run, name) in enumerate(zip(runs, names)):
        best = run.best
        mark = "**final**" if i == final else ""
        acc = f"{best['val_acc']:.2f}"
        cells = [f"**{name}**" if i == final else name,
                 *(format_value(run.config.get(k)) for k in settings),
                 str(len(run.metrics)), str(best["epoch"]), f"**{acc}**" if i == final else acc, mark]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    best = runs[final].best
    lines += ["", f"Final result: **{names[final]}**, validation accuracy {best['val_acc']:.2f}% at epoch "
                  f"{best['epoch']} (checkpoint `{runs[final].path / 'best.pt'}`)."]
    shared = shared_settings(configs)
    if shared:
        lines += ["", "Settings shared by all runs: "
                  + ", ".join(f"{k} {format_value(v)}" for k, v in shared.items()) + "."]
    return "\n".join(lines) + "\n"
