"""The scores an evaluation wrote (`eval_explanations.py`, `eval_grounding.py` --out_json), read for
the explorer pages, which show each method's numbers beside its map.

Read generically: under "methods", every number X of a method is a measure, shown with its interval
X_ci95 = [low, high] where the file has one; each "against_<baseline>" block gives a verdict per
measure. Curves (lists) and anything else are left out, so a new measure needs no change here. A
file measuring several checkpoints lists them under "checkpoints", each with its own "methods"; the
entry naming the page's checkpoint is the one shown.
"""
import json
from pathlib import Path

from data.io import UserError


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def method_scores(scores: dict) -> dict:
    """One method's entry -> {"measures": [[name, value, low, high]], "verdicts": [[baseline, measure,
    verdict]]}; low and high are None without an interval."""
    measures, verdicts = [], []
    for key, value in scores.items():
        if _number(value):
            interval = scores.get(f"{key}_ci95")
            low, high = interval if isinstance(interval, list) and len(interval) == 2 else (None, None)
            measures.append([key, float(value), low, high])
        elif key.startswith("against_") and isinstance(value, dict):
            verdicts += [[key.removeprefix("against_"), measure, result["verdict"]]
                         for measure, result in value.items() if isinstance(result, dict) and "verdict" in result]
    return {"measures": measures, "verdicts": verdicts}


def _names(entry: dict, model_path) -> bool:
    """Whether a checkpoints entry is the one of the file `model_path`."""
    named = entry.get("checkpoint") or entry.get("weights")
    if not isinstance(named, str) or model_path is None:
        return False
    return Path(named).resolve() == Path(model_path).resolve() or str(model_path) in named


def read_scores(path, flag: str = "--scores", model_path=None, named_only: bool = False):
    """{"file": its name, "methods": {method: `method_scores`}} from an evaluation's JSON; with several
    checkpoints in the file, those of the one named `model_path` (else the file's first, or None when
    `named_only`). Refuses, in one line, a file that cannot be read or holds no methods."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"{flag} {path}: cannot read it ({err.strerror or err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{flag} {path}: not a JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict):
        raise UserError(f"{flag} {path}: no \"methods\" in it; pass the --out_json of eval_explanations.py "
                        "or eval_grounding.py")
    methods = None if named_only else data["methods"]
    for entry in data.get("checkpoints") or []:
        if isinstance(entry, dict) and isinstance(entry.get("methods"), dict) and _names(entry, model_path):
            methods = entry["methods"]
    if methods is None:
        return None
    return {"file": path.name,
            "methods": {name: method_scores(scores) for name, scores in methods.items() if isinstance(scores, dict)}}


def model_scores(files, index: int, model_path):
    """The scores shown for the page's model `index` (0, or 1 for --compare's) from --scores FILE
    [FILE2]: FILE for the first model, FILE2 for the second; without FILE2, the second model's entry
    in FILE where FILE measured several checkpoints, else none. None without --scores."""
    if not files:
        return None
    if index < len(files):
        return read_scores(files[index], model_path=model_path)
    return read_scores(files[0], model_path=model_path, named_only=True)
