"""The training loop: no device waits per step, a non-finite loss stops the run, one compiled graph."""

import pytest
import torch

import models.training.engine
import p1_train
from models.checkpoint import load_checkpoint
from models.training.engine import NonFiniteLoss, evaluate, train_one_epoch
from models.training.optim import build_optimizer, build_scheduler
from models.vit import build_vit

FAST = ["--model", "micro", "--no_pretrained", "--device", "cpu", "--num_workers", "0", "--no_progress",
        "--optimizer", "adamw", "--lr", "3e-3", "--batch_size", "32", "--patience", "0"]


class Flatten(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(x.flatten(1))


def batches(count, nan_at=None):
    """uint8 image batches (3 x 4 x 4) with labels; batch `nan_at` gives a NaN loss."""
    generator = torch.Generator().manual_seed(0)
    out = [(torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8, generator=generator),
            torch.randint(0, 5, (4,), generator=generator)) for _ in range(count)]
    if nan_at is not None:
        images = out[nan_at][0].float()
        images[0, 0, 0, 0] = float("nan")
        out[nan_at] = (images, out[nan_at][1])
    return out


class Loader(list):
    batch_size = 4


def train(count, nan_at=None, epoch=1):
    torch.manual_seed(0)
    model = Flatten()
    optimizer = build_optimizer(model, "sgd", 0.1, 0.0, 0.9, torch.device("cpu"))
    scheduler = build_scheduler(optimizer, "constant", total_steps=count, warmup_steps=0)
    return model, train_one_epoch(model, Loader(batches(count, nan_at)), optimizer, scheduler,
                                  torch.device("cpu"), progress=False, epoch=epoch)


@pytest.mark.parametrize("count", [2, 7])
def test_the_device_is_read_once_per_pass_not_per_step(monkeypatch, count):
    reads = []
    for method in ("item", "tolist", "__bool__", "__float__", "__int__"):
        real = getattr(torch.Tensor, method)

        def counted(self, *args, _real=real, _name=method):
            reads.append(_name)
            return _real(self, *args)
        monkeypatch.setattr(torch.Tensor, method, counted)
    model, result = train(count)
    train_reads = list(reads)
    evaluate(model, Loader(batches(count)), torch.device("cpu"), progress=False)
    # the totals with the first non-finite step, then their sum over processes; for 2 steps as for 7
    assert train_reads == ["tolist", "tolist"]
    assert len(reads) == 2 * len(train_reads)
    assert result["train_acc"] >= 0 and result["train_loss"] > 0


def test_a_nan_loss_names_the_epoch_and_step():
    with pytest.raises(NonFiniteLoss, match=r"epoch 3, step 5\b"):
        train(7, nan_at=4, epoch=3)
    _, result = train(7)  # the same batches without the NaN train normally
    assert result["train_loss"] == result["train_loss"]


def test_a_nan_epoch_stops_the_run_and_keeps_the_last_good_checkpoints(small_data, tmp_path, run_cli, monkeypatch):
    real, made = models.training.engine.make_loss_step, []

    def nan_in_epoch_two(*args, **kwargs):  # each epoch makes its step; the second one's 3rd loss is NaN
        step, calls = real(*args, **kwargs), []
        if not args[0].training:  # evaluation's step
            return step
        made.append(step)
        epoch = len(made)

        def loss_step(images, labels):
            loss, logits = step(images, labels)
            calls.append(1)
            return (loss * float("nan") if epoch == 2 and len(calls) == 3 else loss), logits
        return loss_step
    monkeypatch.setattr(models.training.engine, "make_loss_step", nan_in_epoch_two)
    run = tmp_path / "run"
    code, out, err = run_cli(p1_train.main, ["--data_dir", small_data, "--output_dir", run, "--epochs", "3"] + FAST)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "epoch 2, step 3" in err and "NaN" in err
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(run / name)
        assert ckpt["epoch"] == 1
        assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_compile_builds_one_block_graph_for_every_block_and_epoch(small_data, tmp_path, run_cli, aot_eager_compile):
    """The blocks share one compiled graph; a partial last batch (111 = 3 x 32 + 15) and evaluation
    between epochs recompile nothing; the checkpoints keep the plain model's names."""
    run = tmp_path / "run"
    code, out, err = run_cli(p1_train.main, ["--data_dir", small_data, "--output_dir", run,
                                             "--epochs", "3", "--compile"] + FAST)
    assert code == 0, err
    assert out.count("train images/s") == 3
    # micro has two blocks: the second runs the first one's graph
    assert aot_eager_compile["stats"]["unique_graphs"] == 1
    assert aot_eager_compile["frames"]["ok"] == 1
    plain_names = list(build_vit("micro", pretrained=False).state_dict())
    for name in ("best.pt", "last.pt"):
        assert list(load_checkpoint(run / name)["model"]) == plain_names


def _sgd_weights_after(loader_batches, grad_accum):
    torch.manual_seed(0)
    model = Flatten()
    optimizer = build_optimizer(model, "sgd", 0.1, 0.0, 0.0, torch.device("cpu"))
    scheduler = build_scheduler(optimizer, "constant", total_steps=10, warmup_steps=0)
    loader = Loader(loader_batches)
    loader.batch_size = len(loader_batches[0][1])
    train_one_epoch(model, loader, optimizer, scheduler, torch.device("cpu"), progress=False,
                    grad_accum=grad_accum)
    return model.fc.weight.detach().clone()


def _joined(parts):
    return torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])


@pytest.mark.parametrize("count, grad_accum", [(2, 5), (3, 2), (5, 3)])
def test_item_04_grad_accum_partial_group_updates_as_one_big_batch(count, grad_accum):
    """Item 4: a group of fewer micro-batches than --grad_accum (more than the batches left, or the
    last group of an epoch) divides by the micro-batches really summed: each update equals the one
    a single batch of those images gives."""
    micro = batches(count)
    groups = [_joined(micro[start: start + grad_accum]) for start in range(0, count, grad_accum)]
    accumulated = _sgd_weights_after(micro, grad_accum)
    big = _sgd_weights_after(groups, 1)
    torch.testing.assert_close(accumulated, big, rtol=1e-5, atol=1e-6)
