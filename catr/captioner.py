"""The CATR captioner: ResNet features -> transformer encoder -> word decoder -> vocabulary logits.

`build_model()` gives the published architecture (its state dict matches the released v1/v2/v3 files
key for key); `build_model("tiny")` a small one with the same code paths for tests and the demo.
"""
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data.transforms import MEAN, STD

from .backbone import RESNET101_LAYERS, build_backbone
from .preprocess import MAX_SIDE
from .tokenizer import PAD_ID
from .transformer import Transformer


@dataclass(frozen=True)
class CaptionConfig:
    resnet_layers: tuple = RESNET101_LAYERS
    resnet_width: int = 64  # torchvision's width_per_group: the bottleneck width of layer1
    resnet_expansion: int = 4  # a stage's output channels per plane: 4 gives ResNet's 256..2048
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 6
    dec_layers: int = 6
    dim_feedforward: int = 2048
    mlp_dim: int = 512
    dropout: float = 0.1
    vocab_size: int = 30522
    max_length: int = 128
    image_size: int = MAX_SIDE  # images are resized so that their longer side is this many pixels


CONFIGS = {
    "catr": CaptionConfig(),
    # Seconds on a CPU; the same geometry (output stride 16) and vocabulary. Random weights only.
    "tiny": CaptionConfig(resnet_layers=(1, 1, 1, 1), resnet_width=8, hidden_dim=32, nheads=4,
                          enc_layers=2, dec_layers=3, dim_feedforward=64, mlp_dim=64),
}
# tiny with 64..512-channel stages (Bottleneck expansion 1): half a trained step's cost, for a backbone
# trained on the CPU (scripts/pretrain_backbone.py).
CONFIGS["tiny_narrow"] = replace(CONFIGS["tiny"], resnet_expansion=1)


def config_name(config: CaptionConfig):
    """The name in CONFIGS of `config`'s architecture, whatever its image size; None for another."""
    return next((name for name, known in CONFIGS.items() if replace(known, image_size=config.image_size) == config),
                None)


@dataclass
class EncodedImages:
    """What the decoder needs from a batch of images, computed once per image."""

    memory_kvs: list  # per decoder layer, its cross-attention (keys, values): (B, heads, h*w, D/heads)
    padding_mask: Tensor  # (B, h*w), True on cells that come from padding
    grid: tuple  # (h, w) of the feature map; attention rows reshape to it row-major


class MLP(nn.Module):
    """Linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class Caption(nn.Module):
    """Image -> memory (`encode`), words + memory -> states and cross-attention (`decode`), -> logits."""

    def __init__(self, backbone: nn.Module, transformer: Transformer, hidden_dim: int, mlp_dim: int,
                 vocab_size: int, config: CaptionConfig = CaptionConfig()):
        super().__init__()
        self.config = config  # what it was built from; its image_size is the input side it takes
        self.backbone = backbone
        self.input_proj = nn.Conv2d(backbone.num_channels, hidden_dim, kernel_size=1)
        self.transformer = transformer
        self.mlp = MLP(hidden_dim, mlp_dim, vocab_size, 3)

    @property
    def image_size(self) -> int:
        """The longer side, in pixels, of the images it takes (see catr.preprocess)."""
        return self.config.image_size

    @property
    def input_config(self) -> dict:
        """The images it takes (models.training.forward): CATR's normalisation, longer side image_size."""
        return {"mean": MEAN, "std": STD, "image_size": self.image_size}

    def encode(self, images: Tensor, pixel_mask: Tensor = None) -> EncodedImages:
        """Backbone, projection and encoder for (B, 3, H, W) images.

        `pixel_mask` (B, H, W), True on padding, describes a batch of differently sized images padded
        at the bottom and right (see `catr.preprocess.batch_images`); None means no padding.
        """
        return self.encode_cells(*self.image_cells(images, pixel_mask))

    def image_cells(self, images: Tensor, pixel_mask: Tensor = None) -> tuple:
        """The encoder's input: cells (B, h*w, D), their positions (B, h*w, D), padding mask (B, h*w)
        and the grid (h, w). See `encode`."""
        if pixel_mask is None:
            pixel_mask = images.new_zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool)
        return self.feature_cells(*self.backbone(images, pixel_mask))

    def feature_cells(self, features: Tensor, mask: Tensor, pos: Tensor) -> tuple:
        """`image_cells` from the backbone's output: features (B, C, h, w), their padding mask (B, h, w)
        and positions (B, D, h, w); a frozen backbone's output can be computed once and kept."""
        src = self.input_proj(features)
        grid = tuple(src.shape[-2:])
        return src.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2), mask.flatten(1), grid

    def encode_cells(self, src: Tensor, pos: Tensor, padding_mask: Tensor, grid: tuple,
                     removed: Tensor = None) -> EncodedImages:
        """Encoder and memory projection for `image_cells`' output. `removed` (B, h*w), True on cells
        that no attention may see (the encoder's and the decoder's keys), as if they were padding;
        their positions stay those of the whole image."""
        mask = padding_mask if removed is None else padding_mask | removed
        memory = self.transformer.encoder(src, pos, mask)
        return EncodedImages(self.transformer.decoder.project_memory(memory, pos), mask, grid)

    def decode(self, encoded: EncodedImages, captions: Tensor, caption_mask: Tensor = None,
               past: list = None) -> tuple:
        """Word states (B, L, D), per-layer cross-attention (B, heads, L, h*w) for (B, L) ids, and the
        per-layer self-attention keys and values to pass as `past` when decoding the next words."""
        return self.transformer.decode(captions, caption_mask, encoded.memory_kvs, encoded.padding_mask, past)

    def forward(self, images: Tensor, captions: Tensor, caption_mask: Tensor, return_attention: bool = False,
                *, pixel_mask: Tensor = None, average_heads: bool = True, from_features: bool = False,
                output_ids: Tensor = None):
        """Logits (B, L, vocab) for every position of `captions` (B, L); `caption_mask` is True on padding.
        With `output_ids` (K,), the logits of those vocabulary ids only, (B, L, K).

        With `return_attention`, also the list over decoder layers of the cross-attention weights:
        (B, L, h*w) averaged over heads, or (B, heads, L, h*w) with `average_heads=False`.
        With `from_features`, `images` are the backbone's features (B, C, h, w) and `pixel_mask` their
        padding mask (B, h, w), or None: what a frozen backbone gave once (see `feature_cells`).
        """
        if from_features:
            mask = pixel_mask if pixel_mask is not None else images.new_zeros(
                images.shape[0], *images.shape[-2:], dtype=torch.bool)
            encoded = self.encode_cells(*self.feature_cells(images, mask, self.backbone[1](mask).to(images.dtype)))
        else:
            encoded = self.encode(images, pixel_mask)
        hidden, cross_weights, _ = self.decode(encoded, captions, caption_mask)
        logits = self.mlp(hidden) if output_ids is None else self.vocabulary_logits(hidden, output_ids)
        if not return_attention:
            return logits
        if average_heads:
            cross_weights = [weights.mean(dim=1) for weights in cross_weights]
        return logits, cross_weights

    def vocabulary_logits(self, hidden: Tensor, output_ids: Tensor) -> Tensor:
        """The head's logits for the vocabulary ids `output_ids` only: what a closed vocabulary (see
        `close_vocabulary`) needs in training, without the other rows' matrix product."""
        *layers, last = self.mlp.layers
        for layer in layers:
            hidden = F.relu(layer(hidden))
        return F.linear(hidden, last.weight[output_ids], last.bias[output_ids])


CLOSED_LOGIT_BIAS = -1e4  # exp(-1e4) is 0 in every float format: such a word is never generated


@torch.no_grad()
def close_vocabulary(model: Caption, kept_ids) -> None:
    """Let the captioner generate only the vocabulary ids `kept_ids`: every other word's output bias is set
    to CLOSED_LOGIT_BIAS. Its softmax probability is then 0 in every float format, so a loss over the kept
    ids alone equals the full one, and training can skip the other rows of the head (`open_output_ids`)."""
    bias = model.mlp.layers[-1].bias
    closed = torch.ones_like(bias, dtype=torch.bool)
    closed[torch.as_tensor(list(kept_ids), dtype=torch.long)] = False
    bias[closed] = CLOSED_LOGIT_BIAS


def open_output_ids(model: Caption):
    """The vocabulary ids the captioner can generate, (K,) on its device, or None when every id is open."""
    # A hundredth of the closed bias: weight decay shrinks it by far less in any run, and no trained
    # word's bias comes near -100.
    open_ids = (model.mlp.layers[-1].bias > CLOSED_LOGIT_BIAS / 100).nonzero().flatten()
    return None if len(open_ids) == len(model.mlp.layers[-1].bias) else open_ids


def build_model(config="catr") -> Caption:
    """A randomly initialised captioner: a name from CONFIGS ("catr" is the published architecture) or
    a CaptionConfig."""
    cfg = config if isinstance(config, CaptionConfig) else CONFIGS[config]
    backbone = build_backbone(cfg.hidden_dim, cfg.resnet_layers, cfg.resnet_width, cfg.resnet_expansion)
    transformer = Transformer(cfg.hidden_dim, cfg.nheads, cfg.enc_layers, cfg.dec_layers, cfg.dim_feedforward,
                              cfg.dropout, cfg.vocab_size, cfg.max_length, PAD_ID)
    return Caption(backbone, transformer, cfg.hidden_dim, cfg.mlp_dim, cfg.vocab_size, cfg)
