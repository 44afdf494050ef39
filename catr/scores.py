"""COCO caption metrics: BLEU-1..4, ROUGE-L and CIDEr-D, by `pycocoevalcap`'s own scorers.

COCO's evaluation (Chen et al. 2015, "Microsoft COCO Captions: Data Collection and Evaluation
Server") tokenises every caption with the Stanford PTB tokenizer in lower case and drops punctuation
tokens before scoring. That tokenizer is Java; `tokenize` does the same in Python: lower case,
clitics split off ("dog's" -> "dog 's", "don't" -> "do n't"), punctuation removed, marks inside a
word or number kept ("t-shirt", "3.5", "10:30", "a.m."), symbols kept as tokens ("$ 5", "50 %"), and
brackets spelled "-lrb-" ... as PTB writes them (lower-cased, those escape COCO's punctuation filter,
so COCO keeps them). Compared with the Java tokenizer as pycocoevalcap runs it (CoreNLP 3.4.1) on 80
caption-like sentences, the tokens were identical for 78; the two others were "rock 'n' roll" (PTB
keeps 'n') and a doubled apostrophe. METEOR and SPICE also need Java and are left out. The scorer
pycocoevalcap calls "Cider" is CIDEr-D (clipped n-gram counts, length penalty), the one COCO reports
as CIDEr.
"""
import re
from collections import Counter

from data.io import UserError

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr")
TOKENIZATION = ("lower case, punctuation removed (t-shirt, 3.5, a.m. stay whole), clitics split off "
                "(dog's -> dog 's), as the PTB tokenizer does")

_CLITIC = re.compile(r"(?<=[^\W_])(n't|'s|'m|'d|'re|'ve|'ll)\b")
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_TOKEN = re.compile(r"""
      n't\b | '(?:s|m|d|re|ve|ll)\b          # clitics, split off their word first
    | (?:[^\W\d_]\.){2,}                     # initials keep their periods: a.m., u.s.
    | (?:mr|mrs|ms|dr|st|ave|jr|sr|mt|vs)\.    # so do common abbreviations
    | \d+(?:[.,:]\d+)+                        # 3.5, 1,000, 10:30
    | [^\W_]+(?:[-'./&][^\W_]+)*              # words, marks inside them kept: t-shirt, o'clock
    | [()\[\]{}]                              # brackets, which PTB spells out and COCO keeps
    | [&$%#/@+=*]                             # symbols PTB keeps as tokens
""", re.VERBOSE)


def tokenize(caption: str) -> str:
    """A caption as COCO's evaluation sees it: space-separated lower-case tokens without punctuation."""
    caption = _CLITIC.sub(r" \1", caption.lower().replace("\u2019", "'"))
    return " ".join(_BRACKETS.get(token, token) for token in _TOKEN.findall(caption))


def most_frequent_caption(references: dict) -> str:
    """The caption written most often in `references` (image id -> captions), as COCO's evaluation
    tokenises it; a tie goes to the first in alphabetical order. Given to every image, it is the score
    of a captioner that ignores its images."""
    counts = Counter(tokenize(caption) for captions in references.values() for caption in captions)
    if not counts:
        raise UserError("the baseline's annotations hold no captions")
    return min(counts, key=lambda caption: (-counts[caption], caption))


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
    if not any(reference for tokens in ground_truth.values() for reference in tokens):
        # CIDEr's document frequencies would be empty (pycocoevalcap raises ValueError from max()).
        raise UserError(f"the reference captions of the {len(captions)} images scored all tokenise to nothing "
                        "(punctuation or symbols only): there is nothing to score against")
    candidates = {image_id: [tokenize(caption)] for image_id, caption in captions.items()}
    bleu, _ = Bleu(4).compute_score(ground_truth, candidates, verbose=0)
    rouge, _ = Rouge().compute_score(ground_truth, candidates)
    cider, _ = Cider().compute_score(ground_truth, candidates)
    return dict(zip(METRICS, [float(value) for value in (*bleu, rouge, cider)]))
