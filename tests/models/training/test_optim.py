"""The optimizers of build_optimizer on the CPU: the multi-tensor step, with the numbers of torch's
per-parameter loop exactly."""
import pytest
import torch

from models.training.optim import build_optimizer

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
