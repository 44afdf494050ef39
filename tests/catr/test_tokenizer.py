"""The shipped bert-base-uncased vocabulary and WordPiece decoding."""
import hashlib

import pytest

from catr.tokenizer import CLS_ID, PAD_ID, SEP_ID, UNK_ID, VOCAB_PATH, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def ids(tokenizer, *tokens):
    return [tokenizer.vocab.index(token) for token in tokens]


def test_vocabulary_is_bert_base_uncased(tokenizer):
    assert hashlib.md5(VOCAB_PATH.read_bytes()).hexdigest() == "64800d5d8528ce344256daf115d4965e"
    assert len(tokenizer.vocab) == 30522
    assert tokenizer.tokens([PAD_ID, UNK_ID, CLS_ID, SEP_ID]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


@pytest.mark.parametrize("tokens, text", [
    (["a", "woman", "riding", "a", "bike"], "A woman riding a bike"),
    (["two", "sheep", "stand", "##ing", "in", "a", "field", "."], "Two sheep standing in a field."),
    (["a", "snow", "##board", "##er", ",", "jumping", "!"], "A snowboarder, jumping!"),
    (["a", "dog", "'", "s", "toy", "isn", "'", "t", "here", "?"], "A dog's toy isn't here?"),
    (["[CLS]", "a", "cat", "[SEP]", "[PAD]", "[PAD]"], "A cat"),
    (["[CLS]", "[SEP]"], ""),
])
def test_decode(tokenizer, tokens, text):
    assert tokenizer.decode(ids(tokenizer, *tokens)) == text


def test_words_merge_pieces_and_skip_special_tokens():
    tokenizer = load_tokenizer()
    ids = tokenizer.encode("A hotdog, naïve!")
    assert tokenizer.tokens(ids) == ["[CLS]", "a", "hot", "##dog", ",", "naive", "!", "[SEP]"]
    assert tokenizer.words(ids) == [("a", 1, 2), ("hotdog", 2, 4), (",", 4, 5), ("naive", 5, 6), ("!", 6, 7)]
