"""The import rules of .importlinter hold (data/ knows no model, the training loop and the captioner
know no ViT, no cycles, ...), and an import that breaks one is caught."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("data", "models", "catr")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, capture_output=True, text=True)


def test_the_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_import_breaks_its_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path)
    loop = tmp_path / "models" / "training" / "loop.py"
    loop.write_text(loop.read_text() + "\nfrom models.vit import build_vit  # noqa: E402\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "nothing from catr/ BROKEN" in result.stdout and "models.training.loop -> models.vit" in result.stdout
