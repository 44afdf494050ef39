"""The checkpoint format's helpers."""
import torch

from models.checkpoint import host_copy


def test_host_copy_is_a_snapshot_on_the_cpu():
    weights = {"w": torch.ones(3), "nested": [torch.zeros(2)], "n": 4}
    copy = host_copy(weights)
    weights["w"].add_(1)  # the next training step changes the weights in place
    assert copy["w"].tolist() == [1.0, 1.0, 1.0] and copy["n"] == 4 and copy["nested"][0].device.type == "cpu"
    assert host_copy(weights, copy=False)["w"].data_ptr() == weights["w"].data_ptr()  # no copy to write it
