"""Tokenizer.encode is bert-base-uncased's tokenisation; words() groups the pieces back."""
import pytest

from catr.tokenizer import UNK_ID, Tokenizer

CAPTIONS = ["A man riding a hotdog-stand's bike, café naïve.", "Two teddy bears on a cell phone!!",
            "a 3.5 kg \tdog 東京 x\u00ad", "supercalifragilisticexpialidociousxyz", "  "]


@pytest.mark.parametrize("caption", CAPTIONS)
def test_encode_matches_the_tokenizers_library(caption):
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = Tokenizer()
    reference = tokenizers.BertWordPieceTokenizer(str(tokenizer_path()), lowercase=True)
    assert tokenizer.encode(caption) == reference.encode(caption, add_special_tokens=False).ids


def tokenizer_path():
    from catr.tokenizer import VOCAB_PATH
    return VOCAB_PATH


def test_encode_by_hand_and_words():
    tokenizer = Tokenizer()
    ids = tokenizer.encode("A hotdog, naïve!")
    assert tokenizer.tokens(ids) == ["a", "hot", "##dog", ",", "naive", "!"]
    assert tokenizer.words(ids) == [("a", 0, 1), ("hotdog", 1, 3), (",", 3, 4), ("naive", 4, 5), ("!", 5, 6)]
    assert tokenizer.encode("x" * 101) == [UNK_ID]
    assert tokenizer.decode(ids) == "A hotdog, naive!"
