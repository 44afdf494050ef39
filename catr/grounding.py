"""A captioner's word maps graded against the objects the words name (the measures are
models.explain.grounding's): for each caption word whose category is in the image, every method's map
of the word, its attention correctness, pointing games and, optionally, its deletion test.
scripts/eval_grounding.py feeds it images and captions and keeps its results (data.resumable);
`is_record` tells such a kept result from anything else."""
import torch

from data.coco_instances import category_mask
from data.object_words import find_mentions
from models.explain.faithfulness import FRACTIONS, random_maps
from models.explain.grounding import (attention_correctness, cell_tolerance, deletion_masks, pointing_hits,
                                      relative_probability, upsample)

from .decode import MAX_STEPS
from .preprocess import preprocess
from .relevancy import explain_captions, token_log_probs
from .token_methods import TOKEN_METHODS
from .tokenizer import SEP_ID

DELETION_ROWS = 128  # teacher-forced re-scorings run together in the deletion test


def caption_ids(ids: list, ended: bool = True) -> list:
    """A caption's tokens as teacher forcing reads them: [SEP] last, at most MAX_STEPS + 1 in all."""
    return (list(ids)[: MAX_STEPS] + [SEP_ID]) if ended else list(ids)[: MAX_STEPS + 1]


def _of(kind):
    """Tells a value of `kind` (int and float are no bool)."""
    return lambda value: isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _list_of(check):
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _object_with(**fields):
    """Tells a dict whose every field (name=check) passes its check; a missing field is None."""
    return lambda value: isinstance(value, dict) and all(check(value.get(name)) for name, check in fields.items())


def _optional(check):
    return lambda value: value is None or check(value)


_number = _of((int, float))
_mention = _object_with(named=_list_of(_of(str)), absent=_list_of(_of(str)))
_word = _object_with(category=_of(str), word=_of(str), caption=_of(int))
# a log-probability above 0 is none (and a large one would overflow its exp); NaN is what a broken model gives
_log_prob = _optional(lambda value: _number(value) and not value > 0)
_curve = _optional(lambda value: _list_of(_number)(value) and len(value) == len(FRACTIONS))
_scores = _object_with(correctness=_number, pointing=_of(bool), pointing_scaled=_of(bool),
                       deletion_most=_curve, deletion_least=_curve)  # no curves without the deletion test


def is_record(record: dict, methods: list) -> bool:
    """Whether `record` is an image's record as `Grader.grade` writes it for `methods`, or as
    eval_grounding.py writes an image it leaves out (no captions or words, `excluded` saying why): a
    results cache edited by hand is refused when read, not met as a KeyError in the report."""
    scored = _object_with(**dict.fromkeys(methods, _scores))

    def graded(word):
        return _word(word) and _log_prob(word.get("log_prob")) and scored(word.get("methods"))

    return _object_with(captions=_list_of(_mention), words=_list_of(graded), empty_masks=_optional(_list_of(_word)),
                        excluded=_optional(_of(str)))(record)


class Grader:
    """Grades the words of one image's captions with every method."""

    def __init__(self, model, methods: list, table, instances, tokenizer, device, deletion: bool = True,
                 seed: int = 0):
        """`methods`: attention@L, the names of TOKEN_METHODS, uniform, random (seeded by `seed`);
        `table` the word table, `instances` the COCO instances (data/); `deletion` runs the deletion test."""
        self.model, self.methods, self.table, self.instances = model, methods, table, instances
        self.tokenizer, self.device = tokenizer, device
        self.deletion, self.seed = deletion, seed

    def grade(self, image_id: int, image, captions: list) -> dict:
        """`image` the resized RGB image; `captions` token id lists ([SEP] last where they ended)."""
        mentions, graded, empty, masks = self.words_to_grade(image_id, captions)
        record = {"image_id": image_id, "captions": mentions, "words": []}
        if empty:
            record["empty_masks"] = empty
        if not graded:
            return record
        words, explained = self.explain(image_id, image, captions, graded)
        info = self.instances.coco.imgs[image_id]
        size = (info["height"], info["width"])
        for word in words:
            upsampled = upsample(word["maps"], size)
            mask = masks[word["category"]]
            correctness = attention_correctness(upsampled, mask).tolist()
            pointing = pointing_hits(upsampled, mask).tolist()
            scaled = pointing_hits(upsampled, mask, cell_tolerance(word["maps"].shape[-2:], size)).tolist()
            word["methods"] = {method: {"correctness": c, "pointing": p, "pointing_scaled": q}
                               for method, c, p, q in zip(self.methods, correctness, pointing, scaled)}
        if self.deletion:
            self._deletion(words, *explained)
        for word in words:
            del word["maps"], word["row"]
        record["words"] = words
        return record

    def words_to_grade(self, image_id: int, captions: list) -> tuple:
        """(each caption's object mentions; the words to grade, as (caption, category, (word, first
        piece, end)); the words left out because their object's mask is empty; each named category's
        mask (H, W)). No model runs."""
        present = self.instances.present[image_id]
        mentions, graded = [], []
        for index, ids in enumerate(captions):
            words = self.tokenizer.words(ids)
            found = [m for m in find_mentions(self.table, [word for word, _, _ in words])
                     if m.category in self.instances.categories]
            absent = {m.category for m in found if m.category not in present}
            mentions.append({"named": sorted({m.category for m in found}), "absent": sorted(absent)})
            graded += [(index, m.category, words[m.last]) for m in found if m.category in present]
        masks = {category: torch.from_numpy(category_mask(self.instances, image_id, category))
                 for category in {category for _, category, _ in graded}}
        # nothing to point at: every map, uniform included, would score 0
        empty = [{"category": category, "word": word[0], "caption": index}
                 for index, category, word in graded if not masks[category].any()]
        graded = [entry for entry in graded if masks[entry[1]].any()]
        return mentions, graded, empty, masks

    def explain(self, image_id: int, image, captions: list, graded: list) -> tuple:
        """(the `graded` words of `words_to_grade`, each with its maps (methods, h, w) and teacher-forced
        log-probability; (cells, caption ids, log-probabilities) for the deletion test), for the model
        as it is now."""
        if not graded:
            return [], None
        tensor = preprocess(image).to(self.device)
        rows = sorted({index for index, _, _ in graded})
        length = max(len(captions[index]) for index in rows)
        ids = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        for row, index in enumerate(rows):
            ids[row, : len(captions[index])] = torch.tensor(captions[index])
        with torch.no_grad():
            cells = self.model.image_cells(tensor[None])
        maps = explain_captions(self.model, tensor, ids, cells=cells)
        token_maps = {method: maps.relevancy if method == "relevancy" else explain(self.model, tensor, ids, cells=cells)
                      for method, explain in TOKEN_METHODS.items()}
        words = []
        for index, category, (word, first, end) in graded:
            row = rows.index(index)
            words.append({"category": category, "word": word, "caption": index, "row": row, "span": (first, end),
                          "log_prob": float(maps.log_probs[row, first:end].sum()),
                          "maps": self._word_maps(maps, token_maps, row, first, end,
                                                  image_id * 10_000 + index * 128 + first)})
        return words, (cells, ids, maps.log_probs)

    def _word_maps(self, maps, token_maps: dict, row: int, first: int, end: int, random_index: int) -> torch.Tensor:
        """(methods, h, w): each method's map of the word whose pieces are tokens first..end-1;
        `token_maps`: each gradient method's (captions, T, h, w) maps."""
        grid = maps.relevancy.shape[-2:]
        out = []
        for method in self.methods:
            if method.startswith("attention@"):
                out.append(maps.attention[int(method.split("@")[1]), row, first:end].sum(dim=0))
            elif method in token_maps:
                out.append(token_maps[method][row, first:end].sum(dim=0))
            elif method == "uniform":
                out.append(torch.ones(grid, device=maps.relevancy.device))
            else:
                out.append(random_maps([random_index], grid, self.seed)[0].to(maps.relevancy.device))
        return torch.stack(out).float()

    def _deletion(self, words: list, cells: tuple, ids: torch.Tensor, intact_log_probs: torch.Tensor) -> None:
        """Adds each method's two deletion curves to every word's scores (uniform has no order: None)."""
        ordered = [m for m in self.methods if m != "uniform"]
        jobs = []  # (word, method, key, removed masks (F, cells))
        for word in words:
            for method in self.methods:
                word["methods"][method]["deletion_most"] = word["methods"][method]["deletion_least"] = None
            stacked = word["maps"][[self.methods.index(m) for m in ordered]]
            for key, first in (("deletion_most", True), ("deletion_least", False)):
                for method, removed in zip(ordered, deletion_masks(stacked, first)):
                    jobs.append((word, method, key, removed))
        removed = torch.cat([job[3][1:] for job in jobs])  # fraction 0 is the intact image
        captions = torch.cat([ids[job[0]["row"]].expand(len(FRACTIONS) - 1, -1) for job in jobs])
        log_probs = []
        with torch.no_grad():
            for start in range(0, len(removed), DELETION_ROWS):
                chunk = slice(start, start + DELETION_ROWS)
                log_probs.append(token_log_probs(self.model, cells, captions[chunk], removed[chunk]))
        log_probs = torch.cat(log_probs).view(len(jobs), len(FRACTIONS) - 1, -1)
        for (word, method, key, _), scores in zip(jobs, log_probs):
            first, end = word["span"]
            intact = intact_log_probs[word["row"], first:end].sum()
            curve = relative_probability(scores[:, first:end].sum(dim=-1), intact).tolist()
            word["methods"][method][key] = [1.0] + curve
