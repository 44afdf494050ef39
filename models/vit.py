"""Building a package ViT by name, loading its pretrained weights, and small named configurations.

Every model is a `pytorch_pretrained_vit.ViT`, so a state dict saved here loads into the package's
own class. The package cannot build a custom configuration through `ViT(name=None)` (its constructor
refers to an undefined variable), so a small configuration enters the package's table, without
weights, for the moment its model is built, and is built by name like the published ones.
"""
from unittest.mock import patch

import torch
from pytorch_pretrained_vit import ViT
from pytorch_pretrained_vit.configs import PRETRAINED_MODELS

from data.io import UserError
from data.transforms import MEAN, STD

from data.weights import check_state_dict, download_state, read_torch_file

PACKAGE_MODELS = ("B_16", "B_32", "L_16", "L_32",
                  "B_16_imagenet1k", "B_32_imagenet1k", "L_16_imagenet1k", "L_32_imagenet1k")


def _small_config(patch, dim, heads, layers, image_size):
    return {
        "config": dict(patches=(patch, patch), dim=dim, ff_dim=2 * dim, num_heads=heads,
                       num_layers=layers, attention_dropout_rate=0.0, dropout_rate=0.0,
                       representation_size=None, classifier="token"),
        "num_classes": 37,
        "image_size": (image_size, image_size),
        "url": None,
    }


# Trained from scratch in seconds on a CPU: `tiny` for the demo, `micro` for the tests.
SMALL_MODELS = {
    "tiny": _small_config(patch=8, dim=96, heads=4, layers=4, image_size=64),
    "micro": _small_config(patch=8, dim=32, heads=2, layers=2, image_size=32),
}
MODEL_NAMES = PACKAGE_MODELS + tuple(SMALL_MODELS)


def model_entry(name: str) -> dict:
    """The package's table entry of `name` (config, native size, weights URL), or ours for a small model."""
    check_model_name(name)
    return SMALL_MODELS.get(name) or PRETRAINED_MODELS[name]


def check_model_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


def native_image_size(name: str) -> int:
    return model_entry(name)["image_size"][0]


def patch_size(name: str) -> int:
    return model_entry(name)["config"]["patches"][0]


def image_size_problem(name: str, image_size: int) -> str | None:
    """What a side that is not a positive multiple of `name`'s patch size must be (the patch grid
    would drop pixels), or None."""
    patch = patch_size(name)
    if image_size > 0 and image_size % patch == 0:
        return None
    return f"must be a positive multiple of {name}'s patch size {patch}"


def check_image_size(name: str, image_size: int | None) -> int:
    """The input side to build `name` at: `image_size`, or the native one when None; any other side
    than `image_size_problem` allows is one line."""
    if image_size is None:
        return native_image_size(name)
    problem = image_size_problem(name, image_size)
    if problem:
        raise UserError(f"--image_size {problem}, not {image_size}")
    return image_size


def has_published_weights(name: str) -> bool:
    return name in MODEL_NAMES and model_entry(name)["url"] is not None


def build_vit(name: str, num_classes: int = 37, image_size: int | None = None,
              pretrained: bool = True, weights: str | None = None) -> ViT:
    """A package ViT with a new `num_classes` head, pretrained from the package's URL or `weights`.

    With `image_size` other than the weights' native size the position embeddings are resized.
    """
    image_size = image_size or native_image_size(name)
    # The weights first: without a network that fails at once, not after building a large model.
    state = fetch_pretrained_state(name, weights) if weights is not None or pretrained else None
    # The package builds a model only from an entry of its table (its name=None path fails): ours is
    # there for this call alone.
    with patch.dict(PRETRAINED_MODELS, {name: model_entry(name)}):
        model = ViT(name, pretrained=False, image_size=image_size, num_classes=num_classes)
    if state is not None:
        load_pretrained(model, name, state, source=weights or model_entry(name)["url"])
    return set_input_config(model, MEAN, STD)


def set_input_config(model: ViT, mean, std) -> ViT:
    """Record on `model` the inputs it takes (models.training.forward.input_config): its side and the
    normalisation of its training images."""
    model.input_config = {"mean": tuple(mean), "std": tuple(std), "image_size": model.image_size}
    return model


def random_vit(name: str, head_std: float = 1.0, **build_args) -> ViT:
    """A package ViT with random weights and a random head: the package's new head is exactly zero, so
    every logit would tie and no gradient would reach the attention (tests, benchmarks, layout figures)."""
    model = build_vit(name, pretrained=False, **build_args)
    torch.nn.init.normal_(model.fc.weight, std=head_std)
    return model


def fetch_pretrained_state(name: str, weights: str | None = None) -> dict:
    """The pretrained state dict: from a local file, else the package's URL via the torch hub cache."""
    if weights is not None:
        state = read_torch_file(weights)
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]  # a checkpoint of ours: take its weights
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise UserError(f"{weights} does not hold a state dict of tensors")
        return state
    url = model_entry(name)["url"]
    if url is None:
        with_weights = [n for n in PACKAGE_MODELS if has_published_weights(n)]
        raise UserError(f"{name} has no published weights; pass --weights FILE, --no_pretrained, "
                        f"or a model that has them: {', '.join(with_weights)}")
    return download_state(url, f"{name} weights")


def load_pretrained(model: ViT, name: str, state: dict, source: str) -> None:
    """Load the pretrained `state` of model `name`, read from `source`, into `model`, keeping its own
    head when the class count differs."""
    state = dict(state)
    own = model.state_dict()
    state.pop("pre_logits.weight", None)  # the 21k models' representation layer, unused by the package
    state.pop("pre_logits.bias", None)
    kept_head = []
    for key in ("fc.weight", "fc.bias"):
        if key in state and key in own and state[key].shape != own[key].shape:
            del state[key]
            kept_head.append(key)
    key = "positional_embedding.pos_embedding"
    if key in state and key in own and state[key].shape != own[key].shape:
        state[key] = resize_position_embedding(state[key], own[key].shape[1])
    check_state_dict(own, state, source, f"weights from {source} do not fit {name}", ignore=kept_head)
    model.load_state_dict(state, strict=False)


def resize_position_embedding(pos_embedding: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Resize a (1, 1 + g*g, D) position embedding to (1, new_tokens, D), the class token kept."""
    try:
        from pytorch_pretrained_vit.utils import resize_positional_embedding_
        import scipy.ndimage  # noqa: F401  the package needs it but does not declare it
    except ImportError:
        raise UserError("resizing position embeddings needs scipy: pip install scipy") from None
    target = torch.zeros(1, new_tokens, pos_embedding.shape[-1])
    return resize_positional_embedding_(pos_embedding, target, has_class_token=True).to(pos_embedding.dtype)


def load_state_strict(model: ViT, state: dict, source: str, name: str) -> None:
    """Load a full state dict (ours) strictly, reporting a mismatch as one line."""
    check_state_dict(model.state_dict(), state, source, f"{source} does not hold a {name} model")
    model.load_state_dict(state)


def grid_size(model: ViT) -> tuple:
    """The (rows, cols) of the patch grid the model sees."""
    patch = model.patch_embedding.kernel_size
    size = model.image_size if isinstance(model.image_size, tuple) else (model.image_size,) * 2
    return size[0] // patch[0], size[1] // patch[1]
