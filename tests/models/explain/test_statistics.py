"""Bootstrap intervals, paired differences, verdicts and Spearman's correlation on known answers, and
the intervals' coverage on simulated data."""
import pytest
import torch

from models.explain.statistics import (compare, estimate, estimates_rank_correlation, intervals, leader, mean_interval,
                                       paired_difference, pairwise_differences, resample_means, spearman,
                                       summarize_measures)


def test_estimate_is_the_mean_or_the_mean_of_the_strata_means():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0])
    assert float(estimate(values)) == pytest.approx(7.2)
    assert float(estimate(values, strata=torch.tensor([0, 0, 0, 1, 1]))) == pytest.approx((2 + 15) / 2)
    assert float(estimate(torch.tensor([1.0, float("nan"), 5.0]))) == 3.0  # NaN: no value for that item


def test_intervals_are_seeded_contain_the_estimate_and_shrink_with_more_items():
    values = torch.rand(200, generator=torch.Generator().manual_seed(0))
    value, (low, high) = mean_interval(values, seed=3)
    assert low < value < high
    assert torch.equal(resample_means(values, seed=3), resample_means(values, seed=3))
    assert not torch.equal(resample_means(values, seed=3), resample_means(values, seed=4))
    _, (low_small, high_small) = mean_interval(values[:20], seed=3)
    assert high_small - low_small > high - low


def test_a_constant_difference_has_a_point_interval_and_a_verdict():
    a = torch.rand(50, generator=torch.Generator().manual_seed(1))
    difference, interval = paired_difference(a + 2.0, a)
    assert float(difference) == pytest.approx(2.0) and interval.tolist() == pytest.approx([2.0, 2.0])
    assert compare(interval, higher_is_better=True) == "beats"
    assert compare(interval, higher_is_better=False) == "loses"
    assert compare((-0.1, 0.3), higher_is_better=True) == "no clear difference"


def test_stratified_resamples_keep_each_category_and_its_weight():
    values = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])  # one word of category 1 weighs as much as four of 0
    strata = torch.tensor([0, 0, 0, 0, 1])
    replicates = resample_means(values, resamples=200, strata=strata)
    assert torch.allclose(replicates, torch.full_like(replicates, 0.5))


def test_the_interval_covers_the_true_mean_95_times_in_100():
    """Bernoulli(0.3) samples of 80 items, 400 times: the percentile interval of the mean covers 0.3
    in 91-98% of them (95% expected; the percentile bootstrap runs slightly short at small n)."""
    draws = (torch.rand(400, 80, generator=torch.Generator().manual_seed(7)) < 0.3).double()
    _, bounds = mean_interval(draws, resamples=1000, seed=11)
    coverage = ((bounds[:, 0] <= 0.3) & (0.3 <= bounds[:, 1])).double().mean().item()
    assert 0.91 <= coverage <= 0.98


def test_the_paired_interval_covers_the_true_difference_of_correlated_measures():
    """Two measures of the same items share most of their noise: the paired interval of their
    difference (true difference 0.1) covers it about 95 times in 100 and is far narrower than either."""
    generator = torch.Generator().manual_seed(5)
    shared = torch.randn(300, 60, generator=generator, dtype=torch.float64)
    a = shared + 0.1 + 0.2 * torch.randn(300, 60, generator=generator, dtype=torch.float64)
    b = shared + 0.2 * torch.randn(300, 60, generator=generator, dtype=torch.float64)
    _, bounds = paired_difference(a, b, resamples=1000, seed=2)
    coverage = ((bounds[:, 0] <= 0.1) & (0.1 <= bounds[:, 1])).double().mean().item()
    assert 0.91 <= coverage <= 0.98
    _, alone = mean_interval(a, resamples=1000, seed=2)
    assert (bounds[:, 1] - bounds[:, 0]).mean() < 0.5 * (alone[:, 1] - alone[:, 0]).mean()


def test_summaries_differences_and_the_leader():
    generator = torch.Generator().manual_seed(0)
    per_item = {"random": {"m": torch.rand(100, generator=generator)},
                "good": {"m": torch.rand(100, generator=generator) + 0.5},
                "same": {"m": torch.rand(100, generator=generator)}}
    summary = summarize_measures(per_item, {"m": True}, "random")
    assert "against_random" not in summary["random"]
    assert summary["good"]["against_random"]["m"]["verdict"] == "beats"
    assert summary["same"]["against_random"]["m"]["verdict"] == "no clear difference"
    low, high = summary["good"]["m_ci95"]
    assert low < summary["good"]["m"] < high
    pairs = pairwise_differences(per_item, ["good", "same"], {"m": True})
    assert pairs["good - same"]["m"]["verdict"] == "beats"
    lead = leader(per_item, ["same", "good", "random"], "m", True)
    assert lead["best"] == "good" and lead["verdict"] == "beats" and lead["lead"] > 0
    lower_better = leader(per_item, ["same", "good"], "m", False)
    assert lower_better["best"] == "same" and lower_better["lead"] > 0


def test_rows_of_one_length_share_one_draw():
    a = torch.rand(30, generator=torch.Generator().manual_seed(2))
    found = intervals({"a": a, "twice": 2 * a})
    assert found["twice"][1] == pytest.approx(tuple(2 * v for v in found["a"][1]))


def test_spearman_matches_its_definition_with_ties():
    a = torch.tensor([[1.0, 2.0, 2.0, 3.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    b = torch.tensor([[2.0, 1.0, 4.0, 4.0, 9.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    # Pearson of the average ranks: [0, 1.5, 1.5, 3, 4] and [1, 0, 2.5, 2.5, 4]
    ra, rb = torch.tensor([0, 1.5, 1.5, 3, 4]), torch.tensor([1, 0, 2.5, 2.5, 4])
    expected = torch.corrcoef(torch.stack((ra, rb)))[0, 1]
    assert spearman(a, b).tolist() == pytest.approx([float(expected), -1.0])
    assert float(spearman(torch.ones(5), torch.arange(5.0))) == 0.0  # no spread: no shared order


def test_two_models_with_the_same_scores_are_not_ranked_by_rounding():
    """The stratified mean of two identical rows of 250 words can differ in the last bit (a matrix
    product's blocking: it did on an AMD EPYC), and Spearman then read a perfect order. Estimates a
    bit apart are tied: their rank correlation is 0, and a genuine difference is still ranked."""
    values = torch.rand(250, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    strata = torch.arange(250) % 6
    mean = estimate(values, strata)
    bit_apart = torch.stack([mean, torch.nextafter(mean, torch.tensor(2.0, dtype=torch.float64))])
    accuracy = torch.tensor([0.1, 0.3], dtype=torch.float64)
    assert float(spearman(accuracy, bit_apart)) == 1.0  # the last bit, read as an order
    assert float(estimates_rank_correlation(accuracy, bit_apart)) == 0.0
    assert float(estimates_rank_correlation(accuracy, estimate(torch.stack([values, values]), strata))) == 0.0
    better = estimate(torch.stack([values, values + 1e-4]), strata)
    assert float(estimates_rank_correlation(accuracy, better)) == 1.0
    replicates = resample_means(torch.stack([values, values]), 50, 0, strata)  # (2, 50): one column a draw
    assert torch.all(estimates_rank_correlation(accuracy.expand(50, 2), replicates.T) == 0.0)
