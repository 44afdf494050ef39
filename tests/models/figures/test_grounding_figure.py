"""The grounding report's figure draws only what was measured."""
from models.figures.grounding import grounding_figure

FRACTIONS = (0.0, 0.5)


def _summary(with_deletion: bool) -> dict:
    curves = {"deletion_most_curve": [1.0, 0.4], "deletion_least_curve": [1.0, 0.9]} if with_deletion else {}
    return {method: {"correctness": 40.0, "pointing_game": 60.0, **curves} for method in ("layer 0", "random")}


def test_without_the_deletion_test_the_figure_has_one_panel():
    fig = grounding_figure(_summary(with_deletion=False), FRACTIONS, "no deletion")
    assert [ax.get_title() for ax in fig.axes] == ["Does the word's map point at its object?"]


def test_with_the_deletion_test_the_curves_get_their_own_panel():
    fig = grounding_figure(_summary(with_deletion=True), FRACTIONS, "deletion")
    assert [ax.get_title() for ax in fig.axes] == ["Does the word's map point at its object?", "Deletion test"]
    assert len(fig.axes[1].lines) == 4
