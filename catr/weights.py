"""The published CATR weights: where they are, and loading them (or a local file) strictly."""
from data.io import UserError
from data.weights import check_state_dict, download_state, read_torch_file

from .captioner import Caption, build_model
from .checkpoint import checkpoint_config, is_caption_checkpoint

WEIGHT_URLS = {
    "v1": "https://github.com/saahiluppal/catr/releases/download/0.1/weights_9348032.pth",
    "v2": "https://github.com/saahiluppal/catr/releases/download/0.2/weight389123791.pth",
    "v3": "https://github.com/saahiluppal/catr/releases/download/0.2/weight493084032.pth",
}
# v2 gave the most accurate captions in the report this repository reproduces.
DEFAULT_VERSION = "v2"


def load_model(version: str = DEFAULT_VERSION, weights=None, config: str = "catr",
               device="cpu") -> Caption:
    """The captioner with published weights (`version`) or those of a local `weights` file, in eval mode.

    Published weights are downloaded once into the torch hub cache. A file must hold, like the
    published ones, a dict whose 'model' entry is the state dict of the `config` architecture, or be
    a checkpoint of scripts/train_captioner.py, which records its own configuration.
    """
    if weights is not None:
        checkpoint, source = read_torch_file(weights, expected="a CATR checkpoint"), str(weights)
    elif version in WEIGHT_URLS:
        source = f"CATR {version} weights"
        checkpoint = download_state(WEIGHT_URLS[version], source)
    else:
        raise UserError(f"unknown CATR version {version!r}; choose one of {', '.join(WEIGHT_URLS)}")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise UserError(f"{source} is not a CATR checkpoint: expected a dict with the state dict under 'model'")
    if is_caption_checkpoint(checkpoint):
        config, what = checkpoint_config(checkpoint, source), "the CATR configuration it records"
    elif isinstance(checkpoint.get("format"), str):
        raise UserError(f"{source} is a checkpoint of another model ({checkpoint['format']}), not of a captioner")
    else:
        what = "the CATR architecture" if config == "catr" else f"the {config} CATR configuration"
    model = build_model(config)
    check_state_dict(model.state_dict(), checkpoint["model"], source, f"{source} does not match {what}")
    model.load_state_dict(checkpoint["model"], strict=True)
    return model.to(device).eval()
