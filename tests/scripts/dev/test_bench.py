"""The benchmarks run a real step on the CPU and end with one JSON line; batch search and bad input."""
import json

import pytest
import torch

from data.entry import run_main
from data.io import UserError
from benchlib import compile_payoff, largest_fitting

import bench_caption_train
import bench_data
import compile_time
import make_inference_bench_inputs
import bench_infer
import bench_table
import bench_train
import profile_vit_block


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_bench_caption_train_times_every_variant_in_one_record(capsys):
    bench_caption_train.main(["--sizes", "48", "--repeats", "1", "--batch_size", "2", "--tokens", "4", "--words", "8"])
    record = last_json(capsys.readouterr().out)
    assert record["benchmark"] == "caption_train" and record["device"] == "cpu" and "load_avg_1min" in record
    assert set(record["seconds_per_step"]) == {f"{v}@48" for v in ("trained", "narrow", "cached", "closed")}
    assert all(seconds > 0 for seconds in record["seconds_per_step"].values())


def test_bench_train_reports_a_json_line(run_cli):
    code, stdout, err = run_cli(bench_train.main, ["--model", "micro", "--batch_size", "4", "--device", "cpu",
                                                   "--steps", "2", "--warmup", "1", "--optimizer", "adamw"])
    assert code == 0, err
    record = last_json(stdout)
    assert record["benchmark"] == "train" and record["model"] == "micro" and record["image_size"] == 32
    assert record["img_per_s"] > 0 and record["tflops"] > 0 and record["peak_mem_mb"] > 0
    assert record["peak_fraction"] is None and "n/a" in stdout  # no known peak for a CPU
    assert record["epoch_s"] == pytest.approx(3680 / record["img_per_s"], rel=1e-3)
    assert record["flop_per_image"] == 3 * 2 * 415008  # 3 x forward of micro at 32 px
    assert (record["optimizer"], record["precision"], record["attention"]) == ("adamw", "fp32", "fast")
    assert record["torch"] == torch.__version__ and record["device"] == "cpu"
    assert record["first_step_s"] > 0 and record["compile_s"] is None  # compile_s: compiled rows only


def test_bench_infer_both_alternates_the_paths_in_one_run(capsys):
    bench_infer.main(["--model", "micro", "--batch_size", "2", "--device", "cpu", "--steps", "2", "--warmup", "0",
                      "--attention", "both"])
    stdout = capsys.readouterr().out
    record = last_json(stdout)
    assert record["benchmark"] == "infer" and record["attention"] == "both"
    fast, explicit = record["fast"]["img_per_s"], record["explicit"]["img_per_s"]
    assert record["img_per_s"] == fast
    assert record["fast_over_explicit"] == pytest.approx(fast / explicit, rel=1e-2)
    assert "fast / explicit" in stdout


def test_train_options_run_in_process_and_make_a_table(capsys, tmp_path):
    bench_train.main(["--model", "micro", "--batch_size", "2", "--device", "cpu", "--steps", "1",
                      "--warmup", "0", "--grad_checkpointing", "--attention", "explicit",
                      "--precision", "bf16", "--peak_tflops", "1"])
    record = last_json(capsys.readouterr().out)
    assert record["grad_checkpointing"] and record["attention"] == "explicit"
    assert record["precision"] == "bf16"  # CPU bf16 autocast, measured when asked for
    assert record["peak_fraction"] == pytest.approx(record["tflops"] / 1, rel=1e-2)

    results = tmp_path / "results.jsonl"
    failed = {"command": "scripts/dev/bench_train.py --batch_size 4096", "error": "error: does not fit"}
    results.write_text(json.dumps(record) + "\n" + json.dumps(failed) + "\n")
    bench_table.main([str(results)])
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 4 and table[0].startswith("| device |")
    assert f"`{record['command']}`" in table[2] and "explicit bf16" in table[2]
    assert "failed: error: does not fit" in table[3]


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "nope"], "device"),
    (["--device", "cpu", "--find_max_batch"], "CUDA"),
    (["--device", "cpu", "--steps", "0"], "--steps"),
    (["--device", "cpu", "--model", "L_99"], "unknown model"),
])
def test_bad_train_input_is_one_clear_error(argv, message):
    with pytest.raises(UserError, match=message):
        bench_train.main(["--model", "micro", *argv])


def test_compiled_bench_shares_one_block_graph_and_times_the_compile(capsys, aot_eager_compile):
    bench_train.main(["--model", "micro", "--batch_size", "2", "--device", "cpu", "--steps", "2",
                      "--warmup", "1", "--compile"])
    out = capsys.readouterr().out
    assert aot_eager_compile["stats"]["unique_graphs"] == 1  # micro's two blocks, one graph
    record = last_json(out)
    assert record["compile"] and record["compile_s"] >= 0 and record["first_step_s"] > 0
    assert "compiling:" in out


def test_compile_time_traces_one_block_against_the_whole_model(capsys, fresh_dynamo):
    import torch._dynamo

    records = {}
    for region in compile_time.REGIONS:
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        compile_time.main(["--model", "micro", "--batch_size", "2", "--device", "cpu", "--steps", "1",
                           "--backend", "aot_eager", "--region", region])
        records[region] = last_json(capsys.readouterr().out)
    blocks, model = records["blocks"], records["model"]
    assert blocks["benchmark"] == "compile" and blocks["blocks"] == 2
    assert blocks["graphs"] == model["graphs"] == 1 and blocks["first_step_s"] > 0
    assert 2 * blocks["calls_traced"] < model["calls_traced"]  # one block traced, not both


def _row(compile, img_per_s, **extra):
    return {"benchmark": "train", "device_name": "GPU", "model": "L_16_imagenet1k", "image_size": 384,
            "batch_size": 16, "attention": "fast", "precision": "bf16", "grad_checkpointing": False,
            "optimizer": "sgd", "compile": compile, "img_per_s": img_per_s, **extra}


def test_compile_payoff_counts_epochs_against_the_matching_eager_row():
    eager, other_batch = _row(False, 368.0), _row(False, 1000.0, batch_size=64)
    faster = _row(True, 460.0, compile_s=46.0)  # 10 s an epoch -> 8 s: 2 s saved an epoch
    records = [eager, other_batch, faster]
    assert compile_payoff(faster, records) == "46 s, after 23 epochs"
    assert compile_payoff(_row(True, 300.0, compile_s=46.0), records) == "46 s, never"
    assert compile_payoff(_row(True, 460.0, compile_s=46.0, model="tiny"), records) == "46 s, no eager row"
    assert compile_payoff(_row(True, 460.0), records) == "not recorded"  # a row from before compile_s
    assert compile_payoff(eager, records) == ""
    infer = dict(faster, benchmark="infer")
    assert compile_payoff(infer, [dict(eager, benchmark="infer"), infer]).endswith("test sets")


def test_compile_with_both_paths_is_refused():
    with pytest.raises(UserError, match="compile"):
        bench_infer.main(["--model", "micro", "--device", "cpu", "--compile", "--attention", "both"])


def test_bad_input_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: bench_infer.main(["--model", "micro", "--device", "cpu", "--batch_size", "0"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["error: --batch_size must be at least 1, not 0"]


@pytest.mark.parametrize("capacity, start", [(1, 1), (37, 8), (64, 8), (100, 128), (5000, 8), (0, 4)])
def test_largest_fitting_finds_the_capacity(capacity, start):
    tried = []

    def fits(batch):
        tried.append(batch)
        return batch <= capacity
    assert largest_fitting(fits, start, limit=4096) == min(capacity, 4096)
    assert len(tried) <= 2 * 12 + 1  # doubling and bisection, not a linear scan


def test_inference_bench_inputs_are_what_p1_inference_predicts(tmp_path, run_cli):
    """The folder and checkpoint the GPU check times p1_inference.sh on: p1_inference.py, called as
    that script calls it (the script itself runs in tests/test_p1_inference.py and the dry run)."""
    import csv
    import p1_inference

    with torch.random.fork_rng():  # it seeds the random head
        code, _, err = run_cli(make_inference_bench_inputs.main, ["--out", tmp_path, "--count", "3", "--model", "micro"])
    assert code == 0, err
    out = tmp_path / "pred.csv"
    code, _, err = run_cli(p1_inference.main, [f"--ckpt={tmp_path / 'micro.pt'}", f"--img_dir={tmp_path / 'images'}",
                                               f"--out_csv={out}"])
    assert code == 0, err
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "label"] and [r[0] for r in rows[1:]] == ["0.jpg", "1.jpg", "2.jpg"]


def test_block_profile_runs_and_reports_the_bound(capsys):
    profile_vit_block.main(["--model", "micro", "--repeats", "1"])
    stdout = capsys.readouterr().out
    assert "block, fast" in stdout and "bound with free attention" in stdout


def test_bench_data_times_the_three_loading_paths_side_by_side(tmp_path, run_cli):
    code, out, err = run_cli(bench_data.main, ["--image_size", "32", "--count", "5", "--batch_size", "2",
                                               "--rounds", "2", "--out_dir", tmp_path])
    assert code == 0, err
    record = last_json(out)
    assert record["benchmark"] == "data" and record["count"] == 5 and record["load_avg_1min"] >= 0
    assert all(record[f"{path}_img_per_s"] > 0 for path in bench_data.PATHS)
    assert record["speedup"] == pytest.approx(record["uint8_img_per_s"] / record["float_img_per_s"], rel=1e-2)
    assert len(list((tmp_path / "train").glob("*.jpg"))) == 5
    code, _, err = run_cli(bench_data.main, ["--count", "0"])
    assert code == 2 and "at least 1" in err
