"""CATR's architecture: published keys and shapes, weight loading, geometry, positions, causality."""
import math
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

import catr
from catr.backbone import build_backbone
from catr.position_encoding import PositionEmbeddingSine
from catr.tokenizer import PAD_ID
from data.io import UserError

TABLE = Path(__file__).with_name("catr_state_dict.tsv")


def test_state_dict_equals_published_table():
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = catr.build_model()
    ours = [(key, str(tuple(value.shape))) for key, value in model.state_dict().items()]
    published = [tuple(line.split("\t")) for line in TABLE.read_text().splitlines()]
    assert len(published) == 716
    assert ours == published


def test_published_format_loads_strictly(tiny_catr, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": tiny_catr.state_dict(), "epoch": 3}, path)
    loaded = catr.load_model(weights=path, config="tiny")
    assert not loaded.training
    for key, value in tiny_catr.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tiny_catr, tmp_path):
    state = dict(tiny_catr.state_dict())
    state["mlp.head.weight"] = state.pop("mlp.layers.2.weight")
    del state["input_proj.bias"]
    state["input_proj.weight"] = state["input_proj.weight"][:8]
    path = tmp_path / "other.pth"
    torch.save({"model": state}, path)
    with pytest.raises(UserError) as err:
        catr.load_model(weights=path, config="tiny")
    message = str(err.value)
    assert "\n" not in message
    assert "missing keys (2): input_proj.bias, mlp.layers.2.weight" in message
    assert "unexpected keys (1): mlp.head.weight" in message
    assert "input_proj.weight (8, 2048, 1, 1) instead of (32, 2048, 1, 1)" in message


@pytest.mark.parametrize("content", [b"not a checkpoint", None, "folder", "cut"])
def test_file_that_is_not_a_catr_checkpoint(tmp_path, content):
    path = tmp_path / "weights.pth"
    if content is None:
        torch.save({"state_dict": {}}, path)  # a real checkpoint, but not in CATR's format
    elif content == "folder":
        path.mkdir()
    elif content == "cut":  # an interrupted copy
        torch.save({"model": catr.build_model("tiny").state_dict()}, path)
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path.write_bytes(content)
    message = {"folder": "is a folder, not a CATR checkpoint", "cut": "it may be cut short or damaged"}
    with pytest.raises(UserError, match=message.get(content, "is not a CATR checkpoint")) as err:
        catr.load_model(weights=path, config="tiny")
    assert "\n" not in str(err.value) and "Re-running" not in str(err.value)  # torch's preamble is cut


def test_missing_weights_file(tmp_path):
    with pytest.raises(UserError, match="weights file not found"):
        catr.load_model(weights=tmp_path / "nope.pth")


def test_unknown_version_names_the_valid_ones():
    with pytest.raises(UserError, match="unknown CATR version 'v9'; choose one of v1, v2, v3"):
        catr.load_model("v9")


def test_failed_download_names_url_and_weights_flag(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UserError) as err:
        catr.load_model("v3", config="tiny")
    assert catr.WEIGHT_URLS["v3"] in str(err.value)
    assert "--weights" in str(err.value)


@pytest.mark.parametrize("width, height, grid", [(299, 224, (14, 19)), (224, 299, (19, 14)), (299, 299, (19, 19))])
def test_feature_grid(tiny_catr, width, height, grid):
    with torch.no_grad():
        encoded = tiny_catr.encode(torch.randn(1, 3, height, width))
    assert encoded.grid == grid
    assert encoded.padding_mask.shape == (1, grid[0] * grid[1])


def test_published_backbone_has_output_stride_16():
    backbone = build_backbone(256).eval()  # ResNet-101; a small input keeps this fast
    with torch.no_grad():
        features, mask, pos = backbone(torch.randn(1, 3, 97, 128), torch.zeros(1, 97, 128, dtype=torch.bool))
    assert features.shape == (1, 2048, 7, 8)  # ceil(97 / 16), 128 / 16
    assert pos.shape == (1, 256, 7, 8)
    assert not mask.any()


@pytest.mark.parametrize("size, resized", [
    ((500, 375), (299, 224)),
    ((375, 500), (224, 299)),
    ((640, 640), (299, 299)),
    ((100, 60), (299, 179)),  # small images are scaled up too
    ((275, 200), (298, 217)),  # 275 * (299 / 275) is 298.999... in floating point: truncated
])
def test_resize_longer_side(size, resized):
    assert catr.resize_longer_side(Image.new("RGB", size)).size == resized


def test_preprocess_maps_pixels_to_minus_one_one():
    image = Image.new("RGB", (4, 2), (255, 0, 255))
    tensor = catr.preprocess(image)
    assert tensor.shape == (3, 2, 4)
    assert tensor[0].eq(1).all() and tensor[1].eq(-1).all() and tensor[2].eq(1).all()


def _sin_cos_block(coord, num_pos_feats):
    """One axis of the encoding, written out: channel c uses wavelength 10000^(2*(c//2)/F)."""
    values = []
    for c in range(num_pos_feats):
        angle = coord / 10000 ** (2 * (c // 2) / num_pos_feats)
        values.append(math.sin(angle) if c % 2 == 0 else math.cos(angle))
    return values


def test_sine_encoding_by_hand():
    pos = PositionEmbeddingSine(num_pos_feats=4)(torch.zeros(1, 2, 3, dtype=torch.bool))
    assert pos.shape == (1, 8, 2, 3)
    # Cell (row 0, col 1) of a 2 x 3 grid: y = 1/2 * 2pi = pi, x = 2/3 * 2pi.
    expected = [0.0, -1.0, math.sin(math.pi / 100), math.cos(math.pi / 100),
                -math.sqrt(3) / 2, -0.5, math.sin(4 * math.pi / 300), math.cos(4 * math.pi / 300)]
    assert torch.allclose(pos[0, :, 0, 1], torch.tensor(expected), atol=1e-5)
    for row in range(2):
        for col in range(3):
            y, x = (row + 1) / 2 * 2 * math.pi, (col + 1) / 3 * 2 * math.pi
            hand = _sin_cos_block(y, 4) + _sin_cos_block(x, 4)
            assert torch.allclose(pos[0, :, row, col], torch.tensor(hand), atol=1e-5)


def test_sine_encoding_counts_only_unpadded_cells():
    mask = torch.zeros(1, 2, 3, dtype=torch.bool)
    mask[:, :, 2] = True  # last column is padding: the real columns span 0..2pi on their own
    pos = PositionEmbeddingSine(num_pos_feats=4)(mask)
    for col, x in ((0, math.pi), (1, 2 * math.pi), (2, 2 * math.pi)):
        assert torch.allclose(pos[0, 4:, 1, col], torch.tensor(_sin_cos_block(x, 4)), atol=1e-5)


def _captions(batch, length, seed):
    generator = torch.Generator().manual_seed(seed)
    captions = torch.randint(1000, 30000, (batch, length), generator=generator)
    captions[:, 0] = catr.CLS_ID
    return captions


def test_positions_before_t_ignore_later_tokens(tiny_catr):
    images = torch.randn(2, 3, 64, 80)
    t = 5
    captions = _captions(2, 12, seed=1)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    changed = captions.clone()
    changed[:, t:] = _captions(2, 12, seed=2)[:, t:]
    changed_mask = mask.clone()
    changed_mask[1, t + 3:] = True  # padding after t must not matter either
    with torch.no_grad():
        logits, attn = tiny_catr(images, captions, mask, return_attention=True)
        logits2, attn2 = tiny_catr(images, changed, changed_mask, return_attention=True)
    assert torch.allclose(logits[:, :t], logits2[:, :t], atol=1e-5)
    assert not torch.allclose(logits[:, t:], logits2[:, t:], atol=1e-3)
    for layer, layer2 in zip(attn, attn2):
        assert torch.allclose(layer[:, :t], layer2[:, :t], atol=1e-6)


def test_cross_attention_rows_sum_to_one(tiny_catr):
    images = torch.randn(2, 3, 64, 80)
    captions = _captions(2, 128, seed=3)
    mask = torch.ones(2, 128, dtype=torch.bool)
    mask[:, :4] = False
    with torch.no_grad():
        logits, mean = tiny_catr(images, captions, mask, return_attention=True)
        _, per_head = tiny_catr(images, captions, mask, return_attention=True, average_heads=False)
    assert logits.shape == (2, 128, 30522)
    assert len(mean) == len(per_head) == 3
    assert mean[0].shape == (2, 128, 4 * 5)
    assert per_head[0].shape == (2, 4, 128, 4 * 5)
    for layer_mean, layer_heads in zip(mean, per_head):
        assert torch.allclose(layer_mean.sum(-1), torch.ones(2, 128), atol=1e-5)
        assert torch.allclose(layer_heads.sum(-1), torch.ones(2, 4, 128), atol=1e-5)
        assert torch.allclose(layer_heads.mean(1), layer_mean)


def test_padded_batch_never_attends_to_padding(tiny_catr):
    images, pixel_mask = catr.batch_images([torch.randn(3, 64, 80), torch.randn(3, 32, 48)])
    assert images.shape == (2, 3, 64, 80)
    assert pixel_mask[1, 32:].all() and pixel_mask[1, :, 48:].all() and not pixel_mask[0].any()
    captions = _captions(2, 6, seed=4)
    with torch.no_grad():
        encoded = tiny_catr.encode(images, pixel_mask)
        _, attn = tiny_catr(images, captions, torch.zeros(2, 6, dtype=torch.bool), return_attention=True,
                       pixel_mask=pixel_mask)
    padded = encoded.padding_mask.view(2, 4, 5)
    assert padded[1, 2:].all() and padded[1, :, 3:].all() and not padded[1, :2, :3].any()
    for layer in attn:
        assert layer[1][:, encoded.padding_mask[1]].abs().max() == 0
        assert torch.allclose(layer.sum(-1), torch.ones(2, 6), atol=1e-5)


def test_calibrated_batch_norm_gives_every_layer_unit_statistics():
    from torchvision.ops import FrozenBatchNorm2d

    from catr.backbone import Backbone, calibrate_batch_norm
    torch.manual_seed(0)
    backbone = Backbone((1, 1, 1, 1), width_per_group=8)
    images = torch.rand(6, 3, 64, 64) * 2 - 1
    outputs = {}
    layers = [m for m in backbone.modules() if isinstance(m, FrozenBatchNorm2d)]
    hooks = [layer.register_forward_hook(lambda m, i, o: outputs.__setitem__(m, o.clone())) for layer in layers]
    calibrate_batch_norm(backbone, images)
    with torch.no_grad():
        backbone(images, torch.zeros(6, 64, 64, dtype=torch.bool))
    for hook in hooks:
        hook.remove()
    for layer in layers:  # each normalises what it sees (cloned: ReLU runs in place after it)
        out = outputs[layer].double()
        assert out.mean((0, 2, 3)).abs().max() < 1e-4
        assert (out.var((0, 2, 3)) - 1).abs().max() < 1e-2  # eps 1e-5 beside small variances
    features = backbone(images, torch.zeros(6, 64, 64, dtype=torch.bool))[0]
    assert 0.2 < features.abs().mean() < 5  # uncalibrated, these features average about 0.04


def test_a_closed_vocabulary_keeps_the_loss_and_generates_only_its_words():
    from catr.captioner import close_vocabulary, open_output_ids
    from catr.training import caption_step
    from models.training.runtime import autocast
    torch.manual_seed(0)
    model = catr.build_model("tiny").eval()
    assert open_output_ids(model) is None
    kept = [catr.SEP_ID, 1037, 2417, 4418, 6881]
    close_vocabulary(model, kept)
    output_ids = open_output_ids(model)
    assert output_ids.tolist() == sorted(kept)
    images = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    ids = torch.tensor([[catr.CLS_ID, 1037, 2417, catr.SEP_ID], [catr.CLS_ID, 4418, catr.SEP_ID, PAD_ID]])
    batch = (images, torch.zeros(2, 48, 48, dtype=torch.bool), ids, ids == PAD_ID)
    device = torch.device("cpu")
    full = caption_step(model, device, autocast(device, "fp32"))(batch)
    closed = caption_step(model, device, autocast(device, "fp32"), output_ids=output_ids)(batch)
    assert closed[0].item() == pytest.approx(full[0].item(), rel=1e-6)  # the closed words' probability is 0
    assert closed[1:] == full[1:]  # the same next-token hits, out of the same 5 tokens
    for decoded in catr.generate(model, list(images.float() / 127.5 - 1), max_steps=6):
        assert set(decoded.ids) <= set(kept)
