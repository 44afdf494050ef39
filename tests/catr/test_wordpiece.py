"""Encoding captions with bert-base-uncased's rules: expected tokens stated by hand, ids read from vocab.txt."""
import pytest
import torch

from catr.tokenizer import CLS_ID, MAX_LENGTH, PAD_ID, SEP_ID, UNK_ID, VOCAB_PATH, load_tokenizer
from data.io import UserError

VOCAB = VOCAB_PATH.read_text(encoding="utf-8").splitlines()
LINE = {token: index for index, token in enumerate(VOCAB)}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def vocab_ids(tokens):
    """[CLS] tokens [SEP] as line numbers of vocab.txt, independent of the tokenizer under test."""
    return [CLS_ID] + [LINE[token] for token in tokens] + [SEP_ID]


def greedy_pieces(word):
    """WordPiece as BERT defines it: the longest prefix in the vocabulary, then `##` + the longest of the rest."""
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in LINE:
                break
        else:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def test_ids_are_the_vocabulary_lines():
    assert (LINE["[CLS]"], LINE["[SEP]"], LINE["[PAD]"], LINE["[UNK]"]) == (CLS_ID, SEP_ID, PAD_ID, UNK_ID)
    assert vocab_ids(["cafe", "!"]) == [101, 7668, 999, 102]


@pytest.mark.parametrize("text, tokens", [
    ("Café au lait!", ["cafe", "au", "lai", "##t", "!"]),  # accents stripped, lower case, "lait" in pieces
    ("naïve RÉSUMÉ", ["naive", "resume"]),
    ("A dog's toy isn't here?", ["a", "dog", "'", "s", "toy", "isn", "'", "t", "here", "?"]),
    ("I do not know; (maybe) 50%", ["i", "do", "not", "know", ";", "(", "maybe", ")", "50", "%"]),
    ("Hello-world", ["hello", "-", "world"]),
    ("hello 中文 world", ["hello", "中", "文", "world"]),  # each CJK character is a word of its own
    ("  a\t\nb \u3000 ", ["a", "b"]),  # any run of whitespace separates, none is a token
    ("a\x00b\u200bc", ["abc"]),  # control and zero-width format characters are dropped
    ("snowboarder", ["snow", "##board", "##er"]),
    ("xqzjvw", ["x", "##q", "##z", "##j", "##v", "##w"]),
    ("\U0001f642 ok", ["[UNK]", "ok"]),  # a character with no piece in the vocabulary
    ("a" * 101, ["[UNK]"]),  # BERT gives up on words over 100 characters
    ("", []),
])
def test_encode_follows_bert_base_uncased(tokenizer, text, tokens):
    assert tokenizer.encode(text) == vocab_ids(tokens)


@pytest.mark.parametrize("word", ["lait", "snowboarder", "xqzjvw"])
def test_unknown_words_split_longest_piece_first(tokenizer, word):
    assert tokenizer.encode(word) == vocab_ids(greedy_pieces(word))


@pytest.mark.parametrize("caption", [
    "a red circle left of a blue square",
    "a blue square and a red circle",
    "a red circle, a blue square and a green star from left to right",
    "two sheep standing in a field.",
    "a dog's toy isn't here?",
    "a snowboarder jumping!",
])
def test_round_trip(tokenizer, caption):
    assert tokenizer.decode(tokenizer.encode(caption)) == caption.capitalize()


def test_round_trip_normalises_case_accents_and_spaces(tokenizer):
    assert tokenizer.decode(tokenizer.encode("  A  Café ,  Near   the SEA . ")) == "A cafe, near the sea."


def test_longest_caption_fits_and_one_more_token_is_one_line(tokenizer):
    longest = " ".join(["a"] * (MAX_LENGTH - 2))
    assert len(tokenizer.encode(longest)) == MAX_LENGTH
    with pytest.raises(UserError, match=r"is 127 WordPiece tokens; at most 126 fit") as err:
        tokenizer.encode(longest + "\na")
    assert "\n" not in str(err.value)


def test_encode_batch_pads_to_the_longest_and_masks_the_padding(tokenizer):
    ids, padding = tokenizer.encode_batch(["a red circle", "a circle"])
    assert ids.dtype == torch.long and padding.dtype == torch.bool
    assert ids.tolist() == [vocab_ids(["a", "red", "circle"]), vocab_ids(["a", "circle"]) + [PAD_ID]]
    assert padding.tolist() == [[False] * 5, [False] * 4 + [True]]


def test_encode_batch_refuses_a_caption_over_its_limit(tokenizer):
    with pytest.raises(UserError, match="at most 2 fit"):
        tokenizer.encode_batch(["a red circle", "a circle"], max_len=4)
