"""The learning-rate schedules: linear warm-up, then constant or a cosine that ends at zero."""
import math

import pytest
import torch

from models.training.optim import build_scheduler


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
