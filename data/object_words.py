"""Which words of a caption name an object category: a word table and the matching rules.

A table is a text file, one category a line, `category: word, word, ...` (`#` starts a comment).
Words are compared as the captioner's tokenizer splits them into words (lower case, accents dropped,
punctuation apart, WordPiece pieces merged back), so the table's entries are split the same way: a
several-word name such as "hot dog" matches that sequence of words, and "hotdog", one word, matches
only if the table lists it. At each word the longest entry that starts there wins ("teddy bear" before
"bear"). A mention directly followed by another mention is read as modifying it and is not counted
("orange cat" names a cat, "pizza oven" an oven, "bus stop sign" a stop sign). The table ships for
COCO (`coco_object_words.txt`); any COCO-format set can bring its own.
"""
from dataclasses import dataclass
from pathlib import Path

from .io import UserError, read_text

COCO_WORDS = Path(__file__).with_name("coco_object_words.txt")


@dataclass(frozen=True)
class Mention:
    """A category named in a caption: words[first..last] name it; its map is the last word's."""

    category: str
    first: int  # index of its first word
    last: int  # index of its last word


@dataclass
class WordTable:
    entries: dict  # tuple of words -> category
    path: Path

    @property
    def categories(self) -> list:
        return sorted(set(self.entries.values()))


def load_word_table(path, split_words) -> WordTable:
    """The table in `path` (None: COCO's); `split_words(text)` turns an entry into words as captions are
    split (the captioner tokenizer's `split_words`)."""
    path = Path(path) if path is not None else COCO_WORDS
    text = read_text(path, "word table")
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        category, colon, words = line.partition(":")
        category = category.strip()
        names = [name.strip() for name in words.split(",") if name.strip()]
        if not colon or not category or not names:
            raise UserError(f"word table {path}, line {number}: expected 'category: word, word, ...', "
                            f"got {line[:60]!r}")
        for name in names:
            key = tuple(split_words(name))
            if key in entries and entries[key] != category:
                raise UserError(f"word table {path}, line {number}: {name!r} is already listed for "
                                f"{entries[key]!r}")
            entries[key] = category
    if not entries:
        raise UserError(f"word table {path} lists no words")
    return WordTable(entries, path)


def find_mentions(table: WordTable, words: list) -> list:
    """The `Mention`s in a caption's words (lower case, as the tokenizer splits them), in order."""
    longest = max(len(key) for key in table.entries)
    found, index = [], 0
    while index < len(words):
        for size in range(min(longest, len(words) - index), 0, -1):
            category = table.entries.get(tuple(words[index: index + size]))
            if category is not None:
                found.append(Mention(category, index, index + size - 1))
                index += size
                break
        else:
            index += 1
    return [mention for mention, following in zip(found, found[1:] + [None])
            if following is None or following.first != mention.last + 1]
