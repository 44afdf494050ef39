"""The test command: the README's is the one CI runs; it installs what the browser tests need, at the
versions the suite last passed with."""
from packaging.requirements import Requirement

from tests.support import ROOT

COMMAND = "bash scripts/test.sh"


def test_readme_and_ci_run_the_same_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert COMMAND in ci
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"\n{COMMAND} " in quick_start


def test_the_test_script_installs_playwright_chromium_and_opencvs_libgl():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "-r requirements-test.txt" in script and 'apt-get install -y -q "$@"' in script
    assert 'apt_install "the browser tests" chromium' in script and "libgl1" in script
    assert script.rstrip().endswith('exec $PY -m pytest -q -n auto "$@"')
    requirements = (ROOT / "requirements-test.txt").read_text().split()
    assert any(r.startswith("playwright") for r in requirements)
    assert any(r.startswith("pytest") for r in requirements)


def test_the_test_script_installs_the_pinned_versions_unless_asked_for_the_newest():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "VERSIONS=(-c constraints.txt)" in script and 'if [ -n "${UNPINNED:-}" ]' in script


def test_every_requirement_is_pinned_to_a_version_it_allows():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    for file in ("requirements.txt", "requirements-test.txt"):
        for line in (ROOT / file).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                requirement = Requirement(line)
                name = requirement.name.lower().replace("_", "-")
                assert name in pins, f"{requirement.name} of {file} is not in constraints.txt"
                assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} breaks {line}"
