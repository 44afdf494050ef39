"""The checkpoint format's helpers, and a checkpoint's config checked by the flags' rules."""
import pytest
import torch

from data.io import UserError
from data.checkpoints import host_copy
from models.checkpoint import load_checkpoint, model_from_checkpoint


def test_host_copy_is_a_snapshot_on_the_cpu():
    weights = {"w": torch.ones(3), "nested": [torch.zeros(2)], "n": 4}
    copy = host_copy(weights)
    weights["w"].add_(1)  # the next training step changes the weights in place
    assert copy["w"].tolist() == [1.0, 1.0, 1.0] and copy["n"] == 4 and copy["nested"][0].device.type == "cpu"
    assert host_copy(weights, copy=False)["w"].data_ptr() == weights["w"].data_ptr()  # no copy to write it


@pytest.mark.parametrize("field, value, message", [
    ("image_size", "32", "config 'image_size' must be a whole number, not \"32\""),
    ("num_classes", "37", "config 'num_classes' must be a whole number, not \"37\""),
    ("std", [0, 0, 0], "config 'std' must be a list of 3 finite numbers above 0, one per channel, not [0, 0, 0]"),
    ("mean", [0.5, 0.5], "config 'mean' must be a list of 3 finite numbers"),
    ("model", None, "config 'model' must be one of B_16,"),
    ("class_names", ["cat"], "config 'class_names' must be a list of 37 names"),
    ("image_size", 30, "config 'image_size' must be a positive multiple of micro's patch size 8, not 30"),
])
def test_a_hand_edited_checkpoint_config_is_one_line_naming_the_field(ckpt, tmp_path, field, value, message):
    """Checkpoints edited by hand (image_size "32", num_classes "37", std [0,0,0], model null)
    crashed eval_explanations.py; the config is checked by the rules of p1_train.py's flags."""
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["config"][field] = value
    torch.save(checkpoint, tmp_path / "edited.pt")
    with pytest.raises(UserError) as refused:
        model_from_checkpoint(tmp_path / "edited.pt")
    assert str(refused.value).startswith(f"{tmp_path / 'edited.pt'}: {message}")


def test_a_checkpoint_config_without_a_field_or_image_size_is_read_as_before(ckpt, tmp_path):
    """A missing required field is named; a null image size means the model's native one."""
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["config"]["num_classes"]
    torch.save(checkpoint, tmp_path / "short.pt")
    with pytest.raises(UserError, match=r"is an incomplete checkpoint: it lacks config\['num_classes'\]"):
        load_checkpoint(tmp_path / "short.pt")
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["config"]["image_size"] = None
    assert model_from_checkpoint(checkpoint)[1]["image_size"] == 32
