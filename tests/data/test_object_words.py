"""The word table: plurals, synonyms, several-word names, and what must not match."""
import pytest

from catr.tokenizer import Tokenizer
from data.io import UserError
from data.object_words import find_mentions, load_word_table


@pytest.fixture(scope="module")
def table():
    return load_word_table(None, Tokenizer().split_words)


def _named(table, caption):
    tokenizer = Tokenizer()
    words = [word for word, _, _ in tokenizer.words(tokenizer.encode(caption))]
    return [(mention.category, words[mention.last]) for mention in find_mentions(table, words)]


def test_the_table_names_cocos_80_categories(table):
    assert len(table.categories) == 80
    assert {"person", "hot dog", "teddy bear", "cell phone", "traffic light", "tv"} <= set(table.categories)


@pytest.mark.parametrize("caption, named", [
    ("Two dogs and a puppy", [("dog", "dogs"), ("dog", "puppy")]),
    ("A man, a woman and three kids", [("person", "man"), ("person", "woman"), ("person", "kids")]),
    ("a boy rides a bike past a motorbike", [("person", "boy"), ("bicycle", "bike"), ("motorcycle", "motorbike")]),
    ("People near a traffic light talk on cell phones.",
     [("person", "people"), ("traffic light", "light"), ("cell phone", "phones")]),
    ("Two hot dogs beside a teddy bear", [("hot dog", "dogs"), ("teddy bear", "bear")]),
    ("A sofa in front of the TV", [("couch", "sofa"), ("tv", "tv")]),
    # One word, not the name "hot dog"; and "dog" inside it is not a dog.
    ("A hotdog on a plate", []),
    # "orange" is the fruit; before another object word it modifies that word and is not counted.
    ("An orange cat beside oranges in a bowl", [("cat", "cat"), ("orange", "oranges"), ("bowl", "bowl")]),
    ("a bear and a bus stop sign", [("bear", "bear"), ("stop sign", "sign")]),
])
def test_mentions(table, caption, named):
    assert _named(table, caption) == named


def test_any_categories_and_comments(tmp_path):
    path = tmp_path / "shapes.txt"
    path.write_text("# synthetic shapes\ncircle: circle, circles, round thing  # a comment\nsquare: square\n\n")
    shapes = load_word_table(path, Tokenizer().split_words)
    assert shapes.categories == ["circle", "square"]
    assert _named(shapes, "A round thing, a circle and two squares") == [("circle", "thing"), ("circle", "circle")]


@pytest.mark.parametrize("text, message", [
    ("circle circles\n", "expected 'category: word"),
    ("circle:\n", "expected 'category: word"),
    ("circle: ring\nsquare: ring\n", "already listed for 'circle'"),
    ("# nothing\n", "lists no words"),
])
def test_not_a_table(tmp_path, text, message):
    path = tmp_path / "words.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_word_table(path, Tokenizer().split_words)


def test_missing_table(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_word_table(tmp_path / "none.txt", Tokenizer().split_words)
