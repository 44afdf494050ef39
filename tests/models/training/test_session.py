"""models.training.session: the flags every trainer shares, and the early stop every process agrees on."""
import argparse

import torch

from models.training.loop import stop_early
from models.training.session import add_loop_flags, add_runtime_flags


def test_shared_flags_take_each_trainers_defaults():
    parser = argparse.ArgumentParser()
    add_loop_flags(parser, epochs=7, batch_size=5, items="captions", schedule="cosine", warmup_epochs=0.5)
    add_runtime_flags(parser)
    args = parser.parse_args([])
    assert (args.epochs, args.batch_size, args.grad_accum, args.schedule, args.warmup_epochs) == (7, 5, 1, "cosine", 0.5)
    assert (args.seed, args.device, args.precision, args.num_workers, args.resume, args.progress) == \
        (0, None, "bf16", None, False, True)
    assert "captions per step" in parser.format_help()
    assert parser.parse_args(["--no_progress", "--resume"]).progress is False


def test_early_stop_is_said_once_by_the_main_process(capsys):
    cpu = torch.device("cpu")
    assert not stop_early(False, cpu, True, "val loss", 3)
    assert capsys.readouterr().out == ""
    assert stop_early(True, cpu, False, "val loss", 3)
    assert capsys.readouterr().out == ""
    assert stop_early(True, cpu, True, "val CIDEr-D", 3)
    assert capsys.readouterr().out == "early stop: no better val CIDEr-D for 3 epochs\n"
