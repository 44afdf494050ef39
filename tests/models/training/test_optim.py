"""The optimizers and learning-rate schedules: on the CPU the multi-tensor step, with the numbers of
torch's per-parameter loop exactly; linear warm-up, then constant or a cosine that ends at zero."""
import math

import pytest
import torch

from models.training.optim import build_optimizer, build_scheduler


def multipliers(schedule, total, warmup):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, schedule, total, warmup)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_warm_up_rises_linearly_to_the_peak(schedule):
    lrs = multipliers(schedule, total=20, warmup=4)
    assert lrs[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_cosine_falls_from_the_peak_to_zero_through_one_half():
    total, warmup = 24, 4
    lrs = multipliers("cosine", total, warmup)
    after = lrs[warmup:]
    assert all(a > b for a, b in zip(after, after[1:]))  # strictly falling once warmed up
    assert lrs[warmup + (total - warmup) // 2] == pytest.approx(0.5)
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * (total - 1 - warmup) / (total - warmup))))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, "cosine", total, warmup)
    for _ in range(total + 5):  # past the end (an extended run) it stays at zero, never rises again
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_constant_stays_at_the_peak_and_no_warm_up_starts_there():
    assert multipliers("constant", total=10, warmup=0) == pytest.approx([1.0] * 10)

OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@pytest.mark.parametrize("name", OPTIMIZER_CLASSES)
def test_the_cpu_step_is_multi_tensor_with_the_loops_numbers(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
    reference = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    ours = build_optimizer(model, name, 0.01, 0.05, 0.9, torch.device("cpu"))
    settings = {"momentum": 0.9} if name == "sgd" else {}
    loop = OPTIMIZER_CLASSES[name](reference, lr=0.01, weight_decay=0.05, foreach=False, **settings)
    assert ours.defaults["foreach"] is True and not ours.defaults.get("fused")
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        for own, theirs in zip(model.parameters(), reference):
            own.grad = torch.randn(own.shape, generator=generator)
            theirs.grad = own.grad.clone()
        ours.step()
        loop.step()
    for own, theirs in zip(model.parameters(), reference):
        assert torch.equal(own, theirs)
