"""data/entry.py: every entry point reports Ctrl-C during its slow imports as one line, and no library
module changes global state when imported."""
import subprocess
import sys

import pytest

from tests.support import ROOT

# Every script a user or a developer runs, found rather than listed, so a new one is covered.
ENTRY_POINTS = sorted(str(p.relative_to(ROOT)) for pattern in ("p[12]_*.py", "scripts/*.py", "scripts/dev/*.py")
                      for p in ROOT.glob(pattern) if 'if __name__ == "__main__"' in p.read_text())
# Runs a script as `python SCRIPT` does, with Ctrl-C arriving while it imports numpy, PIL or torch.
INTERRUPTED_IMPORT = """
import builtins, runpy, sys
real_import = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name.split(".")[0] in ("numpy", "PIL", "torch", "matplotlib"):
        raise KeyboardInterrupt
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.argv = [sys.argv[1], "--help"]
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# Imports every library module (not the entry module) and reports what global state changed.
IMPORT_ALL = """
import importlib, pathlib, sys
hook = sys.excepthook
for path in sorted(pathlib.Path(".").glob("*/**/*.py")):
    if path.parts[0] in ("data", "models", "catr") and path.name != "entry.py":
        importlib.import_module(".".join(path.with_suffix("").parts).removesuffix(".__init__"))
from pytorch_pretrained_vit.configs import PRETRAINED_MODELS
print(sys.excepthook is hook, "matplotlib.pyplot" in sys.modules, "tiny" in PRETRAINED_MODELS)
"""


def test_entry_points_are_found():
    assert {"p1_train.py", "scripts/eval_captions.py", "scripts/dev/bench_train.py"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_ctrl_c_during_the_imports_is_one_line(script):
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, str(ROOT / script)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    if done.returncode == 0:  # a script that parses its flags before any slow import prints its help
        assert done.stderr == "" and "usage:" in done.stdout
        return
    # Python ends an uncaught Ctrl-C by SIGINT, which a shell reports as 130
    assert done.returncode in (130, -2) and done.stderr == "error: interrupted\n", done.stderr[-500:]


def test_importing_the_libraries_changes_no_global_state():
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # no excepthook installed, no pyplot backend chosen, the package's model table left as it was
    assert done.stdout.split() == ["True", "False", "False"]


@pytest.mark.parametrize("script", ["p1_train", "train_captioner"])
def test_an_input_name_too_long_for_the_file_system_is_one_line(tmp_path, run_cli, script):
    """--data_dir with a 300-byte name raised OSError 'File name too long' where it was first touched."""
    main = __import__(script).main
    code, _, err = run_cli(main, ["--data_dir", tmp_path / ("d" * 300), "--output_dir", tmp_path / "run"])
    assert code == 2 and err.endswith("a name in this path is longer than the file system takes; give a shorter "
                                      "one\n") and len(err.splitlines()) == 1, err
