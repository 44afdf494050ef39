"""Grounding metrics on hand-made maps and masks with known answers."""
import pytest
import torch

from models.explain.grounding import (attention_correctness, cell_tolerance, deletion_masks, peaks, pointing_hits,
                                      relative_probability, summarize, upsample)
from models.explain.faithfulness import FRACTIONS


def _mask():
    mask = torch.zeros(60, 80, dtype=torch.bool)
    mask[10:30, 20:50] = True  # 600 of 4800 pixels
    return mask


def test_uniform_correctness_is_the_area_share():
    uniform = upsample(torch.ones(1, 4, 5), (60, 80))
    assert attention_correctness(uniform, _mask()).item() == pytest.approx(600 / 4800)
    # A map without mass is read as uniform.
    assert attention_correctness(torch.zeros(1, 60, 80), _mask()).item() == pytest.approx(600 / 4800)


def test_correctness_of_maps_inside_and_outside():
    inside = torch.zeros(1, 60, 80)
    inside[0, 15:20, 25:30] = 2.0
    half = inside.clone()
    half[0, 50:55, 0:5] = 2.0
    assert attention_correctness(torch.cat((inside, half)), _mask()).tolist() == pytest.approx([1.0, 0.5])


def test_pointing_game_with_a_15_pixel_tolerance():
    maps = torch.zeros(4, 60, 80)
    maps[0, 20, 30] = 1  # inside
    maps[1, 20, 64] = 1  # 15 px right of the last object column (49): a hit
    maps[2, 20, 65] = 1  # 16 px: a miss
    maps[3, 50, 5] = 1  # far away
    assert pointing_hits(maps, _mask()).tolist() == [True, True, False, False]
    diagonal = torch.zeros(1, 60, 80)
    diagonal[0, 29 + 11, 49 + 11] = 1  # 15.6 px from the corner (29, 49): a miss though both offsets are 11
    assert pointing_hits(diagonal, _mask()).tolist() == [False]


def test_peak_of_ties_is_their_mean_the_centre_for_a_uniform_map():
    assert peaks(torch.ones(1, 61, 81)).tolist() == [[30.0, 40.0]]
    centre = torch.zeros(60, 80, dtype=torch.bool)
    centre[29:31, 39:41] = True
    assert pointing_hits(torch.ones(1, 60, 80), centre, tolerance=1).tolist() == [True]


def test_deletion_masks_follow_the_map_order():
    maps = torch.arange(10.0).view(1, 2, 5)  # cell i has value i
    most = deletion_masks(maps, True)
    least = deletion_masks(maps, False)
    assert most.shape == (1, len(FRACTIONS), 10)
    assert not most[0, 0].any() and most[0, 3].nonzero()[:, 0].tolist() == [7, 8, 9]
    assert least[0, 3].nonzero()[:, 0].tolist() == [0, 1, 2]
    assert most[0].sum(dim=1).tolist() == list(range(10))


def test_deletion_known_answer():
    """A 'model' whose word probability is the share of the object's mass left visible: removing
    the object's cells first drops it to 0 at once, removing the background first keeps it at 1."""
    cells = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0])  # object = cells 8 and 9
    intact = torch.tensor(0.0)  # log 1
    for most_first, expected in ((True, [1, 0.5] + [1e-9] * 8), (False, [1.0] * 9 + [0.5])):
        removed = deletion_masks(cells.view(1, 2, 5), most_first)[0]
        kept = ((~removed) * cells).sum(dim=1) / cells.sum()
        curve = relative_probability(kept.clamp(min=1e-9).log(), intact)
        assert curve.tolist() == pytest.approx(expected, abs=1e-6)
    words = [{"category": "cat", "methods": {"m": {"correctness": 1.0, "pointing": True,
                                                     "deletion_most": [1, 0.5] + [0.0] * 8,
                                                     "deletion_least": [1.0] * 9 + [0.5]}}}]
    summary = summarize(words, ["m"])["m"]
    assert summary["deletion_most_auc"] == pytest.approx(100 * (0.75 + 0.25) / 9, abs=0.01)
    assert summary["deletion_least_auc"] == pytest.approx(100 * (8 + 0.75) / 9, abs=0.01)


def test_summary_averages_per_category_then_over_categories():
    def word(category, correctness, pointing):
        return {"category": category, "methods": {"m": {"correctness": correctness, "pointing": pointing}}}

    words = [word("dog", 1.0, True), word("dog", 0.0, True), word("dog", 0.5, True), word("cat", 0.0, False)]
    summary = summarize(words, ["m"])["m"]
    assert summary["correctness"] == 25.0  # (0.5 + 0.0) / 2, not 1.5 / 4
    assert summary["pointing_game"] == 50.0
    assert summary["deletion_most_auc"] is None


def test_half_a_cell_tolerance_and_intervals_over_words_within_categories():
    assert cell_tolerance((6, 6), (96, 96)) == 8.0
    assert cell_tolerance((19, 14), (480, 640)) == pytest.approx(0.5 * 640 / 14)

    def word(category, correctness, pointing):
        return {"category": category, "methods": {
            m: {"correctness": correctness + bonus, "pointing": pointing, "pointing_scaled": pointing}
            for m, bonus in (("m", 0.25), ("uniform", 0.0))}}

    words = [word("dog", 0.5, True), word("dog", 0.0, True), word("dog", 0.25, True), word("cat", 0.0, False)]
    summary = summarize(words, ["m", "uniform"], resamples=200)
    m = summary["m"]
    assert m["correctness"] == pytest.approx(100 * (0.5 + 0.25) / 2)  # dog words 0.75, 0.25, 0.5; cat 0.25
    low, high = m["correctness_ci95"]
    assert low <= m["correctness"] <= high
    assert m["against_uniform"]["correctness"] == {"difference": 25.0, "difference_ci95": [25.0, 25.0],
                                                   "verdict": "beats"}
    assert m["pointing_game_scaled"] == 50.0 and m["deletion_most_auc"] is None
