"""Perturbation and localisation scores on cases with known answers, and the random baseline."""

import numpy as np
import pytest
import torch

from models.explain.faithfulness import (HIGHER_IS_BETTER, ImageScores, Removal, curve_auc, energy_pointing_game,
                                         faithfulness_table, grid_mask, image_measures, localisation_measures,
                                         mean_measures, object_shares, perturbation_curves, perturbation_scores,
                                         pointing_game, random_maps, remove_patches, removal_order, top_patch_iou)
from models.explain.statistics import summarize_measures
from models.explain.methods import explanation_maps
from models.vit import random_vit


class OnePatchModel(torch.nn.Module):
    """Predicts class 1 while patch (1, 2) of a 4 x 4 grid of 8-px patches is intact, else class 0."""

    def __init__(self):
        super().__init__()
        self.patch_embedding = torch.nn.Conv2d(3, 1, kernel_size=8, stride=8)

    def forward(self, x):
        watched = x[:, :, 8:16, 16:24].abs().flatten(1).sum(1)  # row 1, column 2: patch index 6
        return torch.stack([torch.zeros_like(watched), (watched > 0).float()], dim=1)


def test_removal_order_and_removed_pixels():
    maps = torch.tensor([[[0.1, 0.9], [0.5, 0.3]]])
    assert removal_order(maps, True).tolist() == [[1, 2, 3, 0]]
    assert removal_order(maps, False).tolist() == [[0, 3, 2, 1]]
    images = torch.ones(1, 3, 5, 5)  # a 2 x 2 grid of 2-px patches and one pixel of border
    out = remove_patches(images, removal_order(maps, True), 2, (2, 2), value=-1.0)
    expected = torch.ones(5, 5)
    expected[0:2, 2:4] = -1  # patch 1: row 0, column 1
    expected[2:4, 0:2] = -1  # patch 2: row 1, column 0
    assert torch.equal(out[0, 0], expected) and torch.equal(out[0, 2], expected)
    assert torch.equal(images, torch.ones(1, 3, 5, 5))  # the input is left as it was


def test_perturbation_curves_of_a_model_that_only_looks_at_one_patch():
    model = OnePatchModel()
    images = torch.rand(3, 3, 32, 32) + 0.1
    targets = model(images).argmax(1)
    assert targets.tolist() == [1, 1, 1]
    right = torch.zeros(3, 4, 4)
    right[:, 1, 2] = 1.0  # the map that points at the watched patch
    positive = perturbation_curves(model, images, right, targets, most_relevant_first=True)
    negative = perturbation_curves(model, images, right, targets, most_relevant_first=False)
    assert positive.tolist() == [[True] + [False] * 9] * 3  # gone with the first 10% (2 patches)
    assert negative.all()  # 90% of 16 patches is 14: the watched one is never reached
    assert curve_auc(positive.double().mean(0)) == pytest.approx(100 * 0.05 / 0.9)
    assert curve_auc(negative.double().mean(0)) == pytest.approx(100.0)
    wrong = torch.ones(3, 4, 4)
    wrong[:, 1, 2] = 0.0  # the map that calls the watched patch the least relevant
    assert perturbation_curves(model, images, wrong, targets, True).all()
    assert perturbation_curves(model, images, wrong, targets, False).tolist() == [[True] + [False] * 9] * 3


def test_auc_is_percent_of_the_span():
    assert curve_auc([1.0] * 10) == pytest.approx(100.0)
    assert curve_auc([0.0] * 10) == 0.0
    assert curve_auc([1.0, 0.0], fractions=[0.0, 0.5]) == pytest.approx(50.0)


def test_random_maps_depend_on_the_index_and_seed_only():
    together = random_maps([3, 4, 5], (2, 3), seed=7)
    alone = random_maps([4], (2, 3), seed=7)
    assert together.shape == (3, 2, 3)
    assert torch.equal(together[1], alone[0])
    assert not torch.equal(together[0], together[1])
    assert not torch.equal(random_maps([4], (2, 3), seed=8), alone)


def test_grid_mask_pointing_game_and_iou_on_hand_made_masks():
    mask = np.zeros((8, 12), dtype=np.uint8)  # a 2 x 3 grid of 4-px cells; object on cells (0, 1), (1, 1)
    mask[0:8, 4:8] = 255
    mask[0:1, 8:12] = 255  # a quarter of cell (0, 2): under half, not object
    cells = grid_mask(torch.from_numpy(mask), (2, 3))
    assert cells.tolist() == [[False, True, False], [False, True, False]]
    masks = cells[None].repeat(3, 1, 1)
    maps = torch.tensor([
        [[0, 9, 0], [0, 8, 0]],  # top 2 = the object: hit, IoU 1
        [[0, 9, 8], [0, 0, 0]],  # top 2 = one object cell and one outside: hit, IoU 1/3
        [[9, 0, 8], [0, 0, 0]],  # highest outside, none inside: miss, IoU 0
    ], dtype=torch.float32)
    assert pointing_game(maps, masks).tolist() == [True, True, False]
    assert top_patch_iou(maps, masks).tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_iou_takes_as_many_top_patches_as_the_object_has():
    masks = torch.zeros(1, 2, 2, dtype=torch.bool)
    masks[0, 0, 0] = True
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    assert top_patch_iou(maps, masks).item() == 1.0  # only the single best patch is taken
    assert top_patch_iou(maps, torch.zeros_like(masks)).item() == 0.0


def test_deletion_and_insertion_follow_the_target_probability():
    """The one-patch model's class-1 probability is sigmoid(1) while the patch is there, 1/2 once gone."""
    model = OnePatchModel()
    images = torch.rand(2, 3, 32, 32) + 0.1
    targets = torch.tensor([1, 1])
    right = torch.zeros(2, 4, 4)
    right[:, 1, 2] = 1.0
    scores = perturbation_scores(model, images, right, targets)
    high, half = torch.sigmoid(torch.tensor(1.0)).item(), 0.5
    assert scores["probability_most"][0].tolist() == pytest.approx([high] + [half] * 10)
    assert scores["probability_least"][0].tolist() == pytest.approx([high] * 10 + [half])  # 100%: all gone
    measures = image_measures(scores)
    # deletion: high at 0%, then half: trapezoids over 0..1 = (high + half) / 2 * 0.1 + half * 0.9
    assert measures["deletion_auc"][0].item() == pytest.approx(100 * ((high + half) / 2 * 0.1 + half * 0.9))
    # insertion, the same curve read from the empty image: half at 0% inserted, high from 10% on
    assert measures["insertion_curve"][0].tolist() == pytest.approx([half] + [high] * 10)
    assert measures["insertion_auc"][0].item() == pytest.approx(100 * ((high + half) / 2 * 0.1 + high * 0.9))
    assert measures["positive_auc"][0].item() == pytest.approx(100 * 0.05 / 0.9)
    assert measures["negative_auc"][0].item() == pytest.approx(100.0)


def test_road_removal_imputes_from_the_neighbours_instead_of_a_grey_square():
    """The one-patch model reacts to a zero patch; ROAD fills it from its neighbours, so the class stays."""
    model = OnePatchModel()
    images = torch.rand(1, 3, 32, 32) + 0.1
    right = torch.zeros(1, 4, 4)
    right[:, 1, 2] = 1.0
    grey = perturbation_scores(model, images, right, torch.tensor([1]), Removal("grey"))
    road = perturbation_scores(model, images, right, torch.tensor([1]),
                               Removal("road", generator=torch.Generator().manual_seed(0)))
    assert grey["kept_most"][0, 1].item() is False and road["kept_most"][0, 1].item() is True
    with pytest.raises(ValueError, match="removal"):
        Removal("blur")


def test_energy_pointing_game_known_answers():
    shares = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])  # the object: all of cell (0, 0), half of (0, 1)
    assert energy_pointing_game(torch.tensor([[[2.0, 0.0], [0.0, 0.0]]]), shares).item() == 1.0
    assert energy_pointing_game(torch.tensor([[[0.0, 4.0], [0.0, -9.0]]]), shares).item() == 0.5  # negatives ignored
    uniform = energy_pointing_game(torch.ones(1, 2, 2), shares).item()
    assert uniform == pytest.approx(1.5 / 4)  # chance: the object's area share
    assert energy_pointing_game(-torch.ones(1, 2, 2), shares).item() == pytest.approx(1.5 / 4)  # no mass: chance
    mask = torch.zeros(8, 8)
    mask[:4, :6] = 1
    assert object_shares(mask, (2, 2)).tolist() == [[1.0, 0.5], [0.0, 0.0]]


def test_explanation_maps_scores_and_the_table():
    torch.manual_seed(0)
    model = random_vit("micro")
    model.eval()
    images = torch.randn(3, 3, 32, 32)
    methods = ("random", "last", "rollout", "relevancy")
    predicted, maps = explanation_maps(model, images, methods, torch.tensor([0, 1, 2]))
    assert predicted.tolist() == model(images).argmax(1).tolist()
    assert list(maps) == list(methods) and all(m.shape == (3, 4, 4) for m in maps.values())
    with pytest.raises(ValueError, match="unknown method"):
        explanation_maps(model, images, ["gradcam"], torch.tensor([0, 1, 2]))
    shares = torch.zeros(3, 4, 4)
    shares[:, :2, :2] = 1.0
    scores = ImageScores()
    for method, m in maps.items():
        measures = image_measures(perturbation_scores(model, images, m, predicted))
        measures.update(localisation_measures(m, shares))
        scores.add(method, mean_measures([measures, measures]))
    per_item = scores.tensors()
    assert per_item["random"]["positive_curve"].shape == (3, 10)
    summary = summarize_measures(per_item, HIGHER_IS_BETTER, "random", resamples=100)
    assert set(summary["relevancy"]["against_random"]) == set(HIGHER_IS_BETTER)
    table = faithfulness_table(summary).splitlines()
    assert len(table) == 2 + len(methods) and "(the baseline)" in table[2] and "[" in table[3]
