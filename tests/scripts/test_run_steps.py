"""run_steps.py: several scripts in one process, each seeing the argv and sys.path it would alone."""
import sys

import pytest

import run_steps

# Records what it saw; fails with the status in its first argument, if any.
STEP = """import sys
from pathlib import Path
Path(sys.argv[1]).write_text(repr((sys.argv[1:], sys.path[0])))
if len(sys.argv) > 2:
    sys.exit(int(sys.argv[2]))
"""


@pytest.fixture
def step(tmp_path):
    script = tmp_path / "step.py"
    script.write_text(STEP)
    return script


def test_steps_run_in_order_each_with_its_own_argv(step, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_steps.main([str(step), str(a), ":::", str(step), str(b)]) == 0
    assert eval(a.read_text()) == ([str(a)], str(tmp_path)) and eval(b.read_text()) == ([str(b)], str(tmp_path))
    out = capsys.readouterr().out
    assert out.index(f"$ python {step} {a}") < out.index(f"$ python {step} {b}")
    assert str(tmp_path) not in sys.path  # the script's folder is gone from the path again


def test_the_first_failing_step_stops_the_rest_with_its_status(step, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_steps.main([str(step), str(a), "3", ":::", str(step), str(b)]) == 3
    assert a.exists() and not b.exists()


def test_a_missing_script_is_refused_before_any_step_runs(step, tmp_path, capsys):
    assert run_steps.main([str(step), str(tmp_path / "a"), ":::", "missing.py"]) == 2
    assert not (tmp_path / "a").exists() and "no script missing.py" in capsys.readouterr().err


def test_a_title_is_printed_before_its_step(step, tmp_path, capsys):
    assert run_steps.main(["--title", "the first step", str(step), str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"== the first step\n$ python {step} {tmp_path / 'a'}\n")


@pytest.mark.parametrize("argv", [[":::", "x.py"], ["x.py", ":::"], ["x.py", ":::", ":::", "y.py"],
                                  ["--title", "t", ":::", "x.py"], ["--title"]])
def test_a_step_without_a_script_is_one_clear_error(argv):
    with pytest.raises(SystemExit, match="a step without a script"):
        run_steps.main(argv)
