"""The test command: the README's is the one CI runs, and it installs what the browser tests need."""
from tests.support import ROOT

COMMAND = "bash scripts/test.sh"


def test_readme_and_ci_run_the_same_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert COMMAND in ci
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"\n{COMMAND} " in quick_start


def test_the_test_script_installs_playwright_and_chromium():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "-r requirements-test.txt" in script and "apt-get install -y -q chromium" in script
    assert script.rstrip().endswith('exec $PY -m pytest -q "$@"')
    requirements = (ROOT / "requirements-test.txt").read_text().split()
    assert any(r.startswith("playwright") for r in requirements)
    assert any(r.startswith("pytest") for r in requirements)
