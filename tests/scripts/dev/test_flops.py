"""FLOPs counted from a ViT's configuration, and the peak-throughput table they are divided by."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from flops import forward_flops, model_macs, training_flops, vit_macs
from hardware import peak_tflops
from models.vit import build_vit


def meta_model(name, image_size=None, num_classes=37):
    with torch.device("meta"):
        return build_vit(name, image_size=image_size, num_classes=num_classes, pretrained=False)


def test_vit_l16_at_384_matches_the_published_count():
    model = meta_model("L_16_imagenet1k", 384, num_classes=1000)
    macs = model_macs(model)
    assert sum(macs.values()) / 1e9 == pytest.approx(191.07, abs=0.01)  # 191 GMACs, hand count
    assert macs["attention"] / 1e9 == pytest.approx(16.36, abs=0.01)   # 16.4 GMACs, hand count
    assert forward_flops(model) / 1e9 == pytest.approx(382.1, abs=0.1)
    assert training_flops(model) / 1e12 == pytest.approx(1.146, abs=0.001)  # about 1.15 TFLOP
    assert training_flops(model) * 3680 / 1e15 == pytest.approx(4.2, abs=0.05)  # one epoch, 4.2 PFLOP


def test_count_follows_the_configuration():
    b16 = sum(model_macs(meta_model("B_16_imagenet1k", 224)).values())
    assert b16 / 1e9 == pytest.approx(17.56, abs=0.01)  # the usual 17.6 GMACs of ViT-B/16 at 224
    b32 = sum(model_macs(meta_model("B_32", 384)).values())
    assert b32 < b16  # 145 tokens at 384 with patch 32 against 197 at 224 with patch 16
    assert vit_macs(384, 16, 1024, 4096, 24, 37)["attention"] == model_macs(meta_model("L_16", 384))["attention"]


@pytest.mark.parametrize("name, size", [("micro", 32), ("tiny", 64), ("B_16", 224)])
def test_forward_count_equals_torch_flop_counter(name, size):
    model = meta_model(name, size)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, size, size, device="meta"))
    assert counter.get_total_flops() == forward_flops(model)


def test_training_count_is_three_forwards():
    model = meta_model("micro", 32).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(2, 3, 32, 32, device="meta")).sum().backward()
    # exact but for the gradient of the patch embedding's input, which backward skips (the images
    # need none); that is 0.08% of ViT-L/16 at 384, and the convention counts it
    skipped = 2 * model_macs(model)["patch_embedding"]
    assert counter.get_total_flops() == 2 * (training_flops(model) - skipped)


@pytest.mark.parametrize("device, bf16, fp32", [
    ("NVIDIA H100 80GB HBM3", 989.0, 67.0),
    ("NVIDIA H100 PCIe", 756.0, 51.0),
    ("NVIDIA H100 NVL", 835.0, 60.0),
    ("NVIDIA H200", 989.0, 67.0),
    ("NVIDIA A100-SXM4-80GB", 312.0, 19.5),
    ("NVIDIA A100 80GB PCIe", 312.0, 19.5),
    ("NVIDIA L4", 121.0, 30.3),
    ("NVIDIA L40S", 362.0, 91.6),
])
def test_peak_of_known_gpus(device, bf16, fp32):
    assert peak_tflops(device, "bf16") == bf16
    assert peak_tflops(device, "fp32") == fp32


@pytest.mark.parametrize("device", ["AMD EPYC CPU, 2 threads", "NVIDIA GeForce GTX 1080", "NVIDIA L40"])
def test_unknown_devices_have_no_peak(device):
    assert peak_tflops(device, "bf16") is None


def test_peak_precision_is_checked():
    with pytest.raises(ValueError):
        peak_tflops("NVIDIA H100 PCIe", "fp16")
