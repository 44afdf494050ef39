"""Tokenizer.encode is bert-base-uncased's tokenisation, [CLS] first and [SEP] last; words() groups the pieces back."""
import pytest

from catr.tokenizer import CLS_ID, SEP_ID, UNK_ID, Tokenizer

CAPTIONS = ["A man riding a hotdog-stand's bike, café naïve.", "Two teddy bears on a cell phone!!",
            "a 3.5 kg \tdog 東京 x\u00ad", "supercalifragilisticexpialidociousxyz", "  "]


@pytest.mark.parametrize("caption", CAPTIONS)
def test_encode_matches_the_tokenizers_library(caption):
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = Tokenizer()
    reference = tokenizers.BertWordPieceTokenizer(str(tokenizer_path()), lowercase=True)
    assert tokenizer.encode(caption) == reference.encode(caption).ids


def tokenizer_path():
    from catr.tokenizer import VOCAB_PATH
    return VOCAB_PATH


def test_encode_by_hand_and_words():
    tokenizer = Tokenizer()
    ids = tokenizer.encode("A hotdog, naïve!")
    assert tokenizer.tokens(ids) == ["[CLS]", "a", "hot", "##dog", ",", "naive", "!", "[SEP]"]
    assert tokenizer.words(ids) == [("a", 1, 2), ("hotdog", 2, 4), (",", 4, 5), ("naive", 5, 6), ("!", 6, 7)]
    assert tokenizer.encode("x" * 101) == [CLS_ID, UNK_ID, SEP_ID]
    assert tokenizer.decode(ids) == "A hotdog, naive!"
