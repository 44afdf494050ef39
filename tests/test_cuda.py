"""The GPU paths, each a test that runs on the CPU here and on a CUDA GPU where there is one.

Tests marked `cuda` skip without a GPU; `scripts/gpu_check.sh` runs them with `pytest -m cuda`.
"""
import contextlib
import csv
import os
import subprocess
import sys
import warnings

import pytest
import torch

import catr
import p1_train
from data.datasets import ImageFolder
from data.images import list_images
from data.synthetic import make_synthetic_split
from data.transforms import eval_transform_from_config
from models.attention import inference_model, set_attention
from models.checkpoint import model_config, model_from_checkpoint, save_checkpoint
from models.training.engine import classification_step, make_loss_step, train_one_epoch
from models.training.optim import build_optimizer, build_scheduler
from models.training.loader import make_loader
from models.training.predict import predict
from models.training.runtime import autocast
from models.vit import build_vit, random_vit
from tests.support import DEVICES, ROOT, clear_of_bf16_ties

CUDA = pytest.mark.cuda


def cpu_only_env():
    return {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def micro_batches(count, size=32, batch=8):
    generator = torch.Generator().manual_seed(0)
    return [(torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator),
             torch.randint(0, 37, (batch,), generator=generator)) for _ in range(count)]


class Loader(list):
    batch_size = 8


@CUDA
@pytest.mark.parametrize("compiled", [False, True])
def test_bf16_training_steps_with_fast_attention(compiled):
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = set_attention(build_vit("tiny", pretrained=False), "fast").to(device)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(model, "adamw", 1e-3, 0.0, 0.9, device)
    scheduler = build_scheduler(optimizer, "constant", total_steps=5, warmup_steps=0)
    amp = autocast(device, "bf16", training=True)
    compiled_step = make_loss_step(torch.compile(model), device, amp) if compiled else None
    step = classification_step(model, device, amp, compiled_step=compiled_step, full_batch=Loader.batch_size)
    result = train_one_epoch(model, Loader(micro_batches(5, size=64)), optimizer, scheduler, step)
    assert result["train_loss"] == result["train_loss"] and result["train_loss"] < 10
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def synchronisations_in_one_epoch(steps: int) -> int:
    """How many times one bf16 training epoch of `steps` micro batches waits for the GPU."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = set_attention(build_vit("micro", pretrained=False), "fast").to(device)
    optimizer = build_optimizer(model, "sgd", 0.1, 0.0, 0.9, device)
    scheduler = build_scheduler(optimizer, "constant", total_steps=steps, warmup_steps=0)
    loader = Loader((images.pin_memory(), labels.pin_memory()) for images, labels in micro_batches(steps))
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_one_epoch(model, loader, optimizer, scheduler,
                            classification_step(model, device, autocast(device, "bf16", training=True)))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@CUDA
def test_the_training_loop_does_not_synchronise_per_step():
    # An untimed epoch first: what a process does once (the normalisation constants copied to the
    # GPU and cached) falls in it, whether or not another test ran before this one.
    synchronisations_in_one_epoch(1)
    counts = [synchronisations_in_one_epoch(steps) for steps in (3, 9)]
    assert counts[0] == counts[1], counts  # the end-of-epoch reads only, whatever the step count


@pytest.mark.parametrize("device", DEVICES)
def test_a_checkpoint_saved_from_the_device_loads_on_a_cpu_only_machine(tmp_path, device):
    model = build_vit("micro", pretrained=False).to(device)
    optimizer = build_optimizer(model, "adamw", 1e-3, 0.0, 0.9, torch.device(device))
    model(torch.randn(2, 3, 32, 32, device=device)).sum().backward()
    optimizer.step()
    path = tmp_path / "best.pt"
    save_checkpoint(path, model, model_config("micro", 32), optimizer=optimizer.state_dict())
    # The README's snippet, in a process that sees no GPU: no map_location needed.
    code = ("import torch; ckpt = torch.load(%r, weights_only=True); "
            "devices = {t.device.type for t in ckpt['model'].values()}; "
            "devices |= {t.device.type for s in ckpt['optimizer']['state'].values() for t in s.values() "
            "if torch.is_tensor(t)}; print(sorted(devices))") % str(path)
    done = subprocess.run([sys.executable, "-c", code], env=cpu_only_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['cpu']"


@CUDA
def test_p1_train_one_epoch_on_384_px_images(tmp_path, run_cli):
    data = make_synthetic_split(tmp_path / "data", seed=3, size=384, train_per_class=1, val_per_class=1)
    code, out, err = run_cli(p1_train.main, ["--data_dir", data, "--output_dir", tmp_path / "run", "--model", "micro",
                                             "--image_size", "384", "--no_pretrained", "--device", "cuda",
                                             "--epochs", "1", "--no_progress", "--cache_images"])
    assert code == 0, err
    assert "on cuda" in out and "train images/s" in out
    assert (tmp_path / "run" / "best.pt").exists()


def fp32_logits_on_the_cpu(ckpt, folder) -> dict:
    """{file name: logits} as p1_inference computes them on a CPU, where it runs fp32."""
    device = torch.device("cpu")
    model, config = model_from_checkpoint(ckpt)
    dataset = ImageFolder(folder, eval_transform_from_config(config, to_float=False), labeled=False,
                          files=list_images(folder))
    logits, indices = predict(inference_model(model, device), make_loader(dataset, 32, 0, device), device)
    return {dataset.files[i].name: row for i, row in zip(indices.tolist(), logits)}


def test_only_predictions_clear_of_a_bf16_tie_must_agree():
    fp32 = torch.tensor([[5.0, 1.0, 0.0], [0.0, 4.0, 1.0], [2.0, 1.99, 0.0], [1.0, 3.0, 2.999]])
    near_ties_flipped = torch.tensor([0, 1, 1, 2])  # what bf16 may give
    assert not torch.equal(near_ties_flipped, fp32.argmax(dim=1))  # so comparing every row fails
    clear = clear_of_bf16_ties(fp32)
    assert clear.tolist() == [True, True, False, False]
    assert torch.equal(near_ties_flipped[clear], fp32.argmax(dim=1)[clear])
    assert torch.equal(clear_of_bf16_ties(fp32 * 100), clear)  # relative, as bf16's rounding is
    clear_lead_flipped = torch.tensor([1, 1, 0, 1])
    assert not torch.equal(clear_lead_flipped[clear], fp32.argmax(dim=1)[clear])


@CUDA
def test_p1_inference_gives_the_same_csv_on_the_gpu_as_on_the_cpu(tmp_path):
    from data.synthetic import write_pets_sized_jpegs

    images = write_pets_sized_jpegs(tmp_path / "images", 24)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "micro.pt", random_vit("micro"), model_config("micro", 32))
    out = tmp_path / "gpu.csv"
    done = subprocess.run(["bash", "scripts/p1_inference.sh", str(images), str(out), str(tmp_path / "micro.pt")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "device cuda" in done.stdout
    with open(out) as f:
        on_gpu = {name: int(label) for name, label in list(csv.reader(f))[1:]}
    on_cpu = fp32_logits_on_the_cpu(tmp_path / "micro.pt", images)
    assert sorted(on_gpu) == sorted(on_cpu) and len(on_gpu) == 24
    names = sorted(on_cpu)
    logits = torch.stack([on_cpu[name] for name in names])
    # The GPU runs bf16, the CPU fp32: a near tie may fall either way, a clear lead may not.
    clear = clear_of_bf16_ties(logits).tolist()
    assert sum(clear) > len(names) / 2, f"only {sum(clear)} of {len(names)} images have a clear top class"
    compared = [name for name, is_clear in zip(names, clear) if is_clear]
    assert [on_gpu[name] for name in compared] == [int(on_cpu[name].argmax()) for name in compared]


@contextlib.contextmanager
def ieee_fp32():
    """fp32 convolutions and matmuls computed in full fp32, not TF32; the previous settings after."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before


@CUDA
def test_catr_greedy_decode_gives_the_same_ids_on_the_gpu():
    torch.manual_seed(0)
    model = catr.build_model("tiny").eval()
    image = torch.randn(3, 48, 80, generator=torch.Generator().manual_seed(1))
    on_cpu = catr.greedy_decode(model, image, max_steps=8, end_id=None)
    with ieee_fp32():  # fp32 convolutions and matmuls, as on the CPU
        on_gpu = catr.greedy_decode(model.to("cuda"), image.to("cuda"), max_steps=8, end_id=None)
    assert on_gpu.ids == on_cpu.ids
    assert torch.allclose(on_gpu.attention.cpu(), on_cpu.attention, atol=1e-3)


@CUDA
def test_one_process_torchrun_trains_over_nccl(small_data, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29541",
           "p1_train.py", "--data_dir", str(small_data), "--output_dir", str(tmp_path / "ddp"), "--model", "micro",
           "--no_pretrained", "--device", "cuda", "--epochs", "1", "--no_progress", "--batch_size", "32"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on cuda:0 x1 (nccl)" in result.stdout
