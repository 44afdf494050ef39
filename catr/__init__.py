"""CATR, the transformer image captioner (saahiluppal/catr), compatible with its published weights.

    model = load_model("v2")                          # or load_model(weights="file.pth")
    image = preprocess(resize_longer_side(data.images.open_rgb(path)))
    decoded = greedy_decode(model, image)             # ids, cross-attention per step, ended, score
    captions = generate(model, [image, ...], beam_size=3)  # a Decoded per image; beam search, batched
    caption = load_tokenizer().decode(decoded.ids)
"""
from .captioner import CONFIGS, Caption, build_model
from .decode import MAX_STEPS, Decoded, generate, greedy_decode, reference_greedy_decode
from .preprocess import batch_images, preprocess, resize_longer_side
from .tokenizer import CLS_ID, SEP_ID, Tokenizer, load_tokenizer
from .weights import DEFAULT_VERSION, WEIGHT_URLS, load_model

__all__ = [
    "CONFIGS", "Caption", "build_model", "MAX_STEPS", "Decoded", "generate", "greedy_decode", "reference_greedy_decode",
    "batch_images", "preprocess", "resize_longer_side", "CLS_ID", "SEP_ID", "Tokenizer", "load_tokenizer",
    "DEFAULT_VERSION", "WEIGHT_URLS", "load_model",
]
