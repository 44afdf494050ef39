"""Imported first by every script in scripts/ and scripts/dev/ (whose _repo.py is a link to this file):
puts the repository on sys.path, so a script run by its path (`python scripts/eval_captions.py`) finds
`data`, `models` and `catr`, and reports Ctrl-C during the slow imports that follow as one line
(data.entry, which the top-level scripts import first themselves)."""
import sys
from pathlib import Path

REPO = str(next(p for p in Path(__file__).resolve().parents if (p / "data" / "entry.py").is_file()))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
import data.entry  # noqa: E402,F401
