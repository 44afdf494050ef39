"""COCO caption metrics: BLEU-1..4, ROUGE-L and CIDEr-D, by `pycocoevalcap`'s own scorers.

COCO's evaluation (Chen et al. 2015, "Microsoft COCO Captions: Data Collection and Evaluation
Server") tokenises every caption with the Stanford PTB tokenizer, in lower case, and drops the
punctuation tokens before scoring. That tokenizer is Java; `tokenize` does the same in Python: lower
case, clitics split off as PTB does ("dog's" -> "dog 's", "don't" -> "do n't"), punctuation removed,
while marks inside a word stay ("t-shirt", "3.5"). Rare symbols aside ("&", "$"), the tokens are
the same. METEOR and SPICE also need Java and are left out. The scorer called "Cider" in
pycocoevalcap is CIDEr-D (clipped n-gram counts, length penalty), what COCO reports as CIDEr.
"""
import re

from data.io import UserError

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr")
TOKENIZATION = "lower case, punctuation removed (t-shirt, 3.5 stay whole), clitics split (dog's -> dog 's)"

_CLITIC = re.compile(r"(?<=[^\W_])(n't|'s|'m|'d|'re|'ve|'ll)\b")
_TOKEN = re.compile(r"n't|'[a-z]+|[^\W_]+(?:[-./&+][^\W_]+)*")


def tokenize(caption: str) -> str:
    """A caption as COCO's evaluation sees it: space-separated lower-case tokens without punctuation."""
    caption = _CLITIC.sub(r" \1", caption.lower().replace("\u2019", "'"))
    return " ".join(_TOKEN.findall(caption))


def score_captions(references: dict, captions: dict) -> dict:
    """Corpus scores of `captions` (image id -> caption) against `references` (image id -> captions).

    Only the images in `captions` are scored; each must have references.
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        raise UserError("scoring needs pycocoevalcap: pip install pycocoevalcap") from None
    if not captions:
        raise UserError("no captions to score")
    missing = [image_id for image_id in captions if not references.get(image_id)]
    if missing:
        raise ValueError(f"no reference captions for image ids {missing[:5]}")
    ground_truth = {image_id: [tokenize(reference) for reference in references[image_id]] for image_id in captions}
    candidates = {image_id: [tokenize(caption)] for image_id, caption in captions.items()}
    bleu, _ = Bleu(4).compute_score(ground_truth, candidates, verbose=0)
    rouge, _ = Rouge().compute_score(ground_truth, candidates)
    cider, _ = Cider().compute_score(ground_truth, candidates)
    return dict(zip(METRICS, [float(value) for value in (*bleu, rouge, cider)]))
