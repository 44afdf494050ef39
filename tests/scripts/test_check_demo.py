"""check_demo.py judges a demo folder by ranges: in range passes, out of range fails, missing is one line."""
import json

import pytest

import check_demo


def write_demo(out, run_a_acc=88.0, bleu4=0.7):
    (out / "run_a").mkdir(parents=True)
    (out / "run_b").mkdir()
    (out / "captioner").mkdir()
    (out / "run_a" / "metrics.csv").write_text(f"epoch,val_acc\n1,50.0\n2,{run_a_acc}\n")
    (out / "run_b" / "metrics.csv").write_text("epoch,val_acc\n1,8.0\n")
    right = round(run_a_acc)
    (out / "val_pred.csv").write_text("filename,label\n" + "".join(
        f"{k % 37}_{k}.png,{k % 37 if k < right else (k + 1) % 37}\n" for k in range(100)))
    (out / "run_a" / "metrics.csv").write_text(f"epoch,val_acc\n1,{right}\n")
    (out / "explanations.json").write_text(json.dumps(
        {"methods": {"random": {"positive_auc": 87.0}, "rollout": {"positive_auc": 55.0}}}))
    (out / "captioner" / "metrics.csv").write_text(f"epoch,val_bleu4,val_cider\n1,{bleu4},3.8\n")
    (out / "grounding.json").write_text(json.dumps(
        {"methods": {"relevancy": {"correctness": 14.0}, "uniform": {"correctness": 3.7}}}))


def test_a_demo_within_its_ranges_passes(tmp_path, capsys):
    write_demo(tmp_path)
    check_demo.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("  ok   ") == len(check_demo.CHECKS) and "all 7 numbers in their ranges" in out


def test_a_number_outside_its_range_fails_and_is_named(tmp_path, capsys):
    write_demo(tmp_path, bleu4=0.55)
    with pytest.raises(SystemExit, match="1 of the demo's 7 numbers are outside their ranges"):
        check_demo.main([str(tmp_path)])
    assert "FAIL captioner: best validation BLEU-4 (the most frequent caption: 0.543): 0.55" in capsys.readouterr().out


def test_an_unfinished_demo_is_one_clear_error(tmp_path, run_cli):
    code, _, err = run_cli(check_demo.main, [tmp_path])
    assert code == 2 and err.startswith(f"error: {tmp_path} does not hold a finished demo")
