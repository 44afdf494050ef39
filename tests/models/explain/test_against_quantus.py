"""Our localisation measures against Quantus's (Hedström et al., JMLR 2023), the field's evaluation
toolkit, on small random maps: the pointing game, the energy-based pointing game (Quantus's relevance
mass accuracy, Arras et al. 2022) and the top-patch IoU (from Quantus's top-k intersection).
Skipped, with the reason, where Quantus is missing (requirements-test.txt installs it)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.explain.faithfulness import energy_pointing_game, object_shares, pointing_game, top_patch_iou



@pytest.fixture(scope="module")
def quantus():
    """Quantus, imported by the tests that use it (its import takes seconds, and each pytest-xdist
    worker collects this file)."""
    return pytest.importorskip("quantus", reason="the agreement tests need quantus (requirements-test.txt)")

GRID, PATCH, IMAGES = 4, 8, 6


def quantus_scores(metric, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """`metric` of Quantus on (B, h, w) attributions and masks, called as its users call it."""
    batch = len(maps)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(maps[0].size, 2))
    inputs = np.zeros((batch, 1, *maps.shape[1:]), np.float32)
    return np.array(metric(model=model, x_batch=inputs, y_batch=np.zeros(batch, int), a_batch=maps[:, None],
                           s_batch=masks[:, None].astype(np.float32), device="cpu"), dtype=np.float64)


@pytest.fixture
def maps_and_masks():
    """Random patch maps with distinct values (no tied maximum), pixel masks of random blobs with at
    least one pixel, and patch-aligned masks of whole patches."""
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(IMAGES, GRID, GRID, generator=generator)
    blobs = F.interpolate(torch.rand(IMAGES, 1, 3, 3, generator=generator), size=GRID * PATCH, mode="bilinear")[:, 0]
    pixel_masks = blobs > 0.55
    pixel_masks[:, 0, 0] = True
    patch_masks = torch.rand(IMAGES, GRID, GRID, generator=generator) > 0.6
    patch_masks[:, 1, 2] = True
    return maps, pixel_masks, patch_masks


def as_pixels(grid_values: torch.Tensor) -> np.ndarray:
    """(B, gh, gw) values drawn as blocks of PATCH x PATCH pixels, as the figures draw a patch map."""
    return grid_values.repeat_interleave(PATCH, dim=1).repeat_interleave(PATCH, dim=2).numpy().astype(np.float32)


def test_pointing_game_equals_quantus_on_patch_aligned_masks(maps_and_masks, quantus):
    maps, _, patch_masks = maps_and_masks
    ours = pointing_game(maps, patch_masks).numpy()
    theirs = quantus_scores(quantus.PointingGame(disable_warnings=True), as_pixels(maps), as_pixels(patch_masks))
    np.testing.assert_array_equal(ours, theirs.astype(bool))
    assert 0 < ours.sum() < IMAGES  # both outcomes are compared


def test_energy_pointing_game_equals_quantus_relevance_mass_accuracy(maps_and_masks, quantus):
    maps, pixel_masks, _ = maps_and_masks
    signed = maps - 0.3  # negative relevance counts for neither: Quantus is given the positive part
    shares = torch.stack([object_shares(mask, (GRID, GRID)) for mask in pixel_masks])
    ours = energy_pointing_game(signed, shares).numpy()
    metric = quantus.RelevanceMassAccuracy(normalise=False, abs=False, disable_warnings=True)
    theirs = quantus_scores(metric, as_pixels(signed.clamp(min=0)), pixel_masks.numpy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_top_patch_iou_follows_from_quantus_top_k_intersection(maps_and_masks, quantus):
    """With k the object's patch count, IoU = p / (2 - p) for Quantus's share p of the top k on the object."""
    maps, _, patch_masks = maps_and_masks
    ours = top_patch_iou(maps, patch_masks).numpy()
    for image, k in enumerate(patch_masks.flatten(1).sum(dim=1).tolist()):
        metric = quantus.TopKIntersection(k=k, normalise=False, abs=False, disable_warnings=True)
        share = quantus_scores(metric, maps[image:image + 1].numpy(), patch_masks[image:image + 1].numpy())[0]
        assert ours[image] == pytest.approx(share / (2 - share))


def input_times_gradient(model, inputs, targets):
    """(B, 1, H, W) gradient x input of the target logits: a map that depends on every layer."""
    inputs = torch.as_tensor(inputs).requires_grad_(True)
    logits = model(inputs)
    (gradient,) = torch.autograd.grad(logits.gather(1, torch.as_tensor(targets).view(-1, 1)).sum(), inputs)
    return (gradient * inputs).detach()


def test_cascading_randomisation_equals_quantus_mprt_given_its_reinitialisation(monkeypatch, quantus):
    """With Quantus's re-initialisation (reset_parameters after seeding, layer by layer from the top),
    our cascade gives Quantus's MPRT correlations stage for stage and image for image. (Our own rule
    re-draws each tensor at its trained scale instead, so the draws themselves differ.)"""
    from models.explain import sanity

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    inputs = torch.randn(IMAGES, 1, GRID, GRID)
    targets = torch.arange(IMAGES) % 3
    layers = [(name, [module]) for name, module in reversed(list(model.named_modules()))
              if hasattr(module, "reset_parameters")]

    def quantus_rule(modules, generator):
        torch.manual_seed(42 + 1)  # what Quantus's get_random_layer_generator does before each layer
        for module in modules:
            module.reset_parameters()

    with torch.random.fork_rng():
        metric = quantus.MPRT(layer_order="top_down", seed=42, abs=False, normalise=False, disable_warnings=True,
                              display_progressbar=False)
        theirs = metric(model=model, x_batch=inputs.numpy(), y_batch=targets.numpy(), a_batch=None, device="cpu",
                        explain_func=lambda model, inputs, targets, **_: input_times_gradient(model, inputs,
                                                                                              targets).numpy())
        monkeypatch.setattr(sanity, "randomise", quantus_rule)
        ours = sanity.cascading_randomisation(
            model, layers, lambda m: {"input x gradient": input_times_gradient(m, inputs, targets)})
    assert ours["stages"] == [name for name in theirs if name != "original"] == ["5", "3", "1"]
    expected = np.array([theirs[name] for name in ours["stages"]])
    np.testing.assert_allclose(ours["correlation"]["input x gradient"].numpy(), expected, atol=1e-6)
    assert expected[-1].mean() < 0.9  # the maps did change: the comparison is not of constants
