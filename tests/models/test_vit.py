"""models/vit.py and models/checkpoint.py: building every model, loading weights, the checkpoint format."""
import urllib.error

import pytest
import torch
from pytorch_pretrained_vit import ViT
from pytorch_pretrained_vit.configs import PRETRAINED_MODELS

from data.io import UserError
from models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from data.weights import read_torch_file
import models.vit
from models.vit import MODEL_NAMES, PACKAGE_MODELS, SMALL_MODELS, build_vit, grid_size, random_vit

EXPECTED = {  # name: (dim, layers, patch, native size)
    "B_16": (768, 12, 16, 224), "B_32": (768, 12, 32, 224), "L_16": (1024, 24, 16, 224),
    "L_32": (1024, 24, 32, 224), "B_16_imagenet1k": (768, 12, 16, 384), "B_32_imagenet1k": (768, 12, 32, 384),
    "L_16_imagenet1k": (1024, 24, 16, 384), "L_32_imagenet1k": (1024, 24, 32, 384),
}


@pytest.mark.parametrize("name", PACKAGE_MODELS)
def test_every_package_model_builds_without_download(name):
    dim, layers, patch, size = EXPECTED[name]
    with torch.device("meta"):
        model = build_vit(name, num_classes=37, pretrained=False)
    g = size // patch
    assert isinstance(model, ViT)
    assert model.positional_embedding.pos_embedding.shape == (1, g * g + 1, dim)
    assert len(model.transformer.blocks) == layers and model.fc.out_features == 37
    assert grid_size(model) == (g, g)
    with torch.device("meta"):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 37)


def test_l16_at_384_has_the_published_size():
    with torch.device("meta"):
        model = build_vit("L_16_imagenet1k", num_classes=37, pretrained=False)
    assert round(sum(p.numel() for p in model.parameters()) / 1e5) == 3037  # 303.7M
    assert grid_size(model) == (24, 24)


def _saved_weights(tmp_path, num_classes=37):
    torch.manual_seed(0)
    source = random_vit("micro", num_classes=num_classes)
    path = tmp_path / "micro.pth"
    torch.save(source.state_dict(), path)
    return source, path


def test_weights_load_from_a_local_file(tmp_path):
    source, path = _saved_weights(tmp_path)
    model = build_vit("micro", weights=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_new_head_when_the_class_count_differs(tmp_path):
    source, path = _saved_weights(tmp_path, num_classes=1000)
    model = build_vit("micro", num_classes=37, weights=str(path))
    assert torch.equal(model.patch_embedding.weight, source.patch_embedding.weight)
    assert model.fc.out_features == 37 and model.fc.weight.abs().sum() == 0  # the package's zero head


def test_position_embeddings_are_resized_for_another_image_size(tmp_path):
    source, path = _saved_weights(tmp_path)
    model = build_vit("micro", image_size=64, weights=str(path))  # grid 4x4 -> 8x8
    old = source.positional_embedding.pos_embedding
    new = model.positional_embedding.pos_embedding
    assert new.shape == (1, 65, 32)
    assert torch.equal(new[:, 0], old[:, 0])  # the class token's slot is kept as it is
    assert torch.allclose(new[0, 1], old[0, 1], atol=1e-6)  # a corner of the grid stays where it was
    assert torch.equal(model.transformer.blocks[0].attn.proj_q.weight, source.transformer.blocks[0].attn.proj_q.weight)


def test_weights_of_another_model_are_refused(tmp_path):
    _, path = _saved_weights(tmp_path)
    with pytest.raises(UserError, match="do not fit tiny"):
        build_vit("tiny", weights=str(path))


def test_download_failure_names_url_and_flag(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(models.vit, "ViT", None)  # fails before the model is built, not after
    with pytest.raises(UserError, match=r"https://github.com/lukemelas/.*B_32.pth.*--weights FILE"):
        build_vit("B_32", num_classes=37)
    with pytest.raises(UserError, match="L_16 has no published weights"):
        build_vit("L_16", num_classes=37)


def test_checkpoint_loads_into_the_package_class(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = random_vit("micro")
    config = {"model": "micro", "num_classes": 37, "image_size": 32}
    save_checkpoint(tmp_path / "c.pt", model, config, epoch=1)
    assert "micro" not in PRETRAINED_MODELS  # building it left the package's table as it was
    monkeypatch.setitem(PRETRAINED_MODELS, "micro", SMALL_MODELS["micro"])
    plain = ViT("micro", pretrained=False, num_classes=37, image_size=32)
    plain.load_state_dict(load_checkpoint(tmp_path / "c.pt")["model"])  # strict
    rebuilt, _ = model_from_checkpoint(tmp_path / "c.pt")
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(plain.eval()(x), model.eval()(x)) and torch.allclose(rebuilt(x), model(x))


def test_a_folder_and_an_unreadable_pickle_are_named_as_such_without_torchs_warnings(tmp_path):
    import pickle
    import warnings

    with pytest.raises(UserError, match="is a folder, not a readable PyTorch file"):
        read_torch_file(tmp_path)
    with open(tmp_path / "p4.pt", "wb") as stream:
        pickle.dump({"model": {"w": [1.0]}}, stream, protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UserError, match="torch.load cannot read it"):
            read_torch_file(tmp_path / "p4.pt")
    assert caught == []


def test_files_that_are_not_our_checkpoints_are_refused(tmp_path):
    model = build_vit("micro", pretrained=False)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a checkpoint written by p1_train.py"):
        load_checkpoint(tmp_path / "bare.pt")
    with pytest.raises(UserError, match="not a readable PyTorch file: it is not a file torch.save writes"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    config = {"model": "tiny", "num_classes": 37, "image_size": 64}  # says tiny, holds micro weights
    save_checkpoint(tmp_path / "wrong.pt", model, config)
    with pytest.raises(UserError, match="does not hold a tiny model"):
        model_from_checkpoint(tmp_path / "wrong.pt")
    state = model.state_dict()
    state["fc.bias"][0] = float("inf")
    save_checkpoint(tmp_path / "inf.pt", state, {**config, "model": "micro", "image_size": 32})
    with pytest.raises(UserError, match=r"inf.pt holds NaN or infinite weights \(1: fc.bias\)"):
        model_from_checkpoint(tmp_path / "inf.pt")


def test_unknown_model_name():
    with pytest.raises(UserError, match="unknown model 'H_14'"):
        build_vit("H_14")
    assert "tiny" in MODEL_NAMES and "micro" in MODEL_NAMES
