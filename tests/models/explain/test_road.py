"""ROAD's noisy linear imputation: known answers, and agreement with pytorch-grad-cam's copy of the
authors' imputer (scipy's sparse solver) and its ROAD metric."""
import os
from unittest import mock

import numpy as np
import pytest
import torch

from models.explain.road import linear_imputation, noisy_linear_imputation


def grad_cam(module: str):
    """A module of pytorch-grad-cam, the reference; its imports (OpenCV, scikit-learn) set OpenMP
    variables in the environment, which are put back as they were."""
    with mock.patch.dict(os.environ):
        return pytest.importorskip(f"pytorch_grad_cam.{module}", reason="pytorch-grad-cam (grad-cam) is not installed")


def test_a_hole_in_a_linear_ramp_is_filled_exactly_and_kept_pixels_stay():
    """A linear image is its own neighbour mean away from the border, so an inner hole comes back."""
    rows, cols = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    ramp = (0.3 * rows - 0.2 * cols + 1.0).expand(1, 3, 16, 16)
    hole = torch.zeros(1, 16, 16, dtype=torch.bool)
    hole[0, 4:12, 3:10] = True
    filled = linear_imputation(ramp, hole)
    assert torch.allclose(filled, ramp, atol=1e-4)
    noisy = torch.where(hole[:, None], torch.full_like(ramp, 9.0), ramp)  # what is removed does not matter
    assert torch.allclose(linear_imputation(noisy, hole), ramp, atol=1e-4)


def test_an_image_with_nothing_kept_becomes_the_mean_and_noise_lands_on_removed_pixels_only():
    images = torch.rand(2, 3, 8, 8)
    everything = torch.ones(2, 8, 8, dtype=torch.bool)
    assert torch.equal(linear_imputation(images, everything), torch.zeros_like(images))
    removed = torch.zeros(2, 8, 8, dtype=torch.bool)
    removed[:, 2:5, 2:5] = True
    generator = torch.Generator().manual_seed(0)
    noisy = noisy_linear_imputation(images, removed, noise=0.01, generator=generator)
    plain = linear_imputation(images, removed)
    jitter = (noisy - plain)[removed[:, None].expand_as(images)]
    assert torch.equal(noisy[~removed[:, None].expand_as(images)], images[~removed[:, None].expand_as(images)])
    assert 0.005 < float(jitter.std()) < 0.015


def test_the_imputation_matches_the_reference_sparse_solver():
    road = grad_cam("metrics.road")
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(3, 3, 12, 14, generator=generator, dtype=torch.float64)
    removed = torch.rand(3, 12, 14, generator=generator) < 0.6
    ours = linear_imputation(images, removed, tolerance=1e-10)
    imputer = road.NoisyLinearImputer(noise=0.0)
    reference = torch.stack([imputer(images[i].float(), (~removed[i]).float()) for i in range(3)])
    assert torch.allclose(ours.float(), reference, atol=1e-4)
    assert torch.allclose(linear_imputation(images.float(), removed), reference, atol=1e-3)  # default tolerance


def test_road_scores_match_pytorch_grad_cam_on_a_tiny_model():
    """grad-cam's ROAD metric (most relevant removed first, without noise) against the same pixels
    imputed here and given to the same model."""
    road = grad_cam("metrics.road")
    targets_module = grad_cam("utils.model_targets")
    perturbation = grad_cam("metrics.perturbation_confidence")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 10 * 10, 3)).eval()
    images = torch.randn(2, 3, 12, 12)
    cams = np.random.default_rng(0).random((2, 12, 12)).astype(np.float32)
    targets = [targets_module.ClassifierOutputTarget(1)] * 2
    for percentile in (20, 60):
        metric = perturbation.PerturbationConfidenceMetric(
            perturbation.RemoveMostRelevantFirst(percentile, road.NoisyLinearImputer(noise=0.0)))
        theirs = metric(images, cams, targets, model, return_diff=False)
        removed = torch.from_numpy(np.stack([c >= np.percentile(c, percentile) for c in cams]))
        with torch.no_grad():
            ours = model(linear_imputation(images, removed, tolerance=1e-8))[:, 1].numpy()
        assert ours == pytest.approx(theirs, abs=1e-4)
