"""How far a mean over images (or words) could move with another sample of them, and rank correlation.

- `resample_means`: the bootstrap (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993) of a
  mean: R resamples with replacement, each a matrix product with the resample's counts, so every
  measure and method of one report is resampled from one draw of indices. A difference of two means
  over the same items is then resampled paired, as `paired_difference` does. With `strata` (a word's
  category) each resample draws within each stratum, and the estimate weighs the strata equally:
  the mean of the category means that the grounding report gives.
- `percentile_interval`: the 2.5th and 97.5th percentiles of the resampled means (95%).
- `compare`: a difference's verdict, "beats" only when its interval excludes 0.
- `spearman`: Spearman's rank correlation per row, ties given their average rank;
  `estimates_rank_correlation` the same between series of estimates, which rounding cannot order.

Seeded: the same values, seed and strata give the same intervals on any machine.
"""
import torch

RESAMPLES = 2000
LEVEL = 0.95
VALUES_PER_CHUNK = 2 ** 24  # resample counts held at once (resamples x items), about 128 MB in float64


def _stratum_weights(strata: torch.Tensor) -> torch.Tensor:
    """(n,) the weight of each item in the mean of stratum means."""
    _, inverse, counts = torch.unique(strata, return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[inverse].double())


def _resample_counts(n: int, resamples: int, generator: torch.Generator, strata=None) -> torch.Tensor:
    """(resamples, n) how many times each item is drawn; within its stratum when `strata` is given."""
    if strata is None:
        drawn = torch.randint(n, (resamples, n), generator=generator)
    else:
        order = torch.argsort(strata, stable=True)
        _, inverse, counts = torch.unique(strata[order], return_inverse=True, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        offsets = (torch.rand(resamples, n, generator=generator, dtype=torch.float64) * counts[inverse]).long()
        drawn = order[starts[inverse] + offsets.clamp(max=counts[inverse] - 1)]
    return torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(1, drawn, torch.ones(resamples, n,
                                                                                             dtype=torch.float64))


def estimate(values, strata=None) -> torch.Tensor:
    """(...,) the estimate the intervals are about: the mean over the last axis (NaN marking an item
    without that measure, left out), or the mean of the strata's means."""
    values = torch.as_tensor(values, dtype=torch.float64)
    if strata is None:
        return values.nanmean(dim=-1)
    return values @ _stratum_weights(torch.as_tensor(strata))


def resample_means(values, resamples: int = RESAMPLES, seed: int = 0, strata=None) -> torch.Tensor:
    """(..., resamples) bootstrap replicates of `estimate(values, strata)`; `values` (..., n) on the CPU.

    Items are drawn whether or not they hold a value: a NaN item counts in no mean (a ratio of the
    resampled sums of values and of items present), so rows with NaN at different items still share
    one draw."""
    values = torch.as_tensor(values, dtype=torch.float64).cpu()
    n = values.shape[-1]
    if n == 0:
        raise ValueError("a bootstrap needs at least one value")
    present = ~values.isnan()
    if strata is not None and not present.all():
        raise ValueError("stratified means take no missing values")
    strata = None if strata is None else torch.as_tensor(strata).cpu()
    weights = torch.full((n,), 1.0 / n, dtype=torch.float64) if strata is None else _stratum_weights(strata)
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, VALUES_PER_CHUNK // n)
    sums, shares = [], []
    for start in range(0, resamples, chunk):
        drawn = (_resample_counts(n, min(chunk, resamples - start), generator, strata) * weights).T
        sums.append(values.nan_to_num(0.0) @ drawn)
        shares.append(present.double() @ drawn)
    sums, shares = torch.cat(sums, dim=-1), torch.cat(shares, dim=-1)
    return sums if strata is not None else sums / shares  # NaN where a resample drew no value


def percentile_interval(replicates: torch.Tensor, level: float = LEVEL) -> torch.Tensor:
    """(..., 2) the percentile interval of bootstrap replicates (..., R)."""
    tail = (1 - level) / 2
    q = torch.tensor([tail, 1 - tail], dtype=replicates.dtype)
    return torch.nanquantile(replicates, q, dim=-1).movedim(0, -1)


def mean_interval(values, resamples: int = RESAMPLES, seed: int = 0, strata=None, level: float = LEVEL) -> tuple:
    """(estimate (...,), interval (..., 2)) of the mean of `values` (..., n)."""
    return estimate(values, strata), percentile_interval(resample_means(values, resamples, seed, strata), level)


def paired_difference(a, b, resamples: int = RESAMPLES, seed: int = 0, strata=None, level: float = LEVEL) -> tuple:
    """(difference, interval) of mean(a) - mean(b), `a` and `b` measured on the same items."""
    return mean_interval(torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64),
                         resamples, seed, strata, level)


def compare(interval, higher_is_better: bool) -> str:
    """The verdict on a difference (method minus baseline) from its interval: only an interval that
    excludes 0 says "beats" or "loses"."""
    low, high = (float(v) for v in interval)
    if low > 0 or high < 0:
        return "beats" if (low > 0) == higher_is_better else "loses"
    return "no clear difference"


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 along the last axis, tied values sharing the mean of their ranks."""
    values = values.double()
    ordered = values.sort(dim=-1).values.contiguous()
    below = torch.searchsorted(ordered, values.contiguous(), right=False)
    up_to = torch.searchsorted(ordered, values.contiguous(), right=True)
    return (below + up_to - 1).double() / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(...,) Spearman's rank correlation of the last axes of `a` and `b`: Pearson's correlation of
    their average ranks. A row without spread (all values tied) shares no order: 0."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(dim=-1, keepdim=True), rb - rb.mean(dim=-1, keepdim=True)
    norm = (ra.square().sum(dim=-1) * rb.square().sum(dim=-1)).sqrt()
    return torch.where(norm > 0, (ra * rb).sum(dim=-1) / norm.where(norm > 0, torch.ones_like(norm)), 0.0)


def estimates_rank_correlation(a: torch.Tensor, b: torch.Tensor, digits: int = 9) -> torch.Tensor:
    """`spearman` of two series of estimates (means over the same items, one per model, on the last
    axis), estimates that agree to `digits` significant digits of their row's largest counted as
    tied. The same values averaged by a matrix product can differ in the last bit from one row to
    the next (the product's blocking), and such a difference is no order: without this, two models
    with identical scores would be ranked, and correlate at +1 or -1."""
    def snapped(x):
        x = x.double()
        scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(torch.float64).tiny)
        return torch.round(x / scale, decimals=digits)
    return spearman(snapped(a), snapped(b))


def intervals(rows: dict, resamples: int = RESAMPLES, seed: int = 0, strata=None, level: float = LEVEL) -> dict:
    """{key: (estimate, (low, high))} for each (n,) tensor of `rows`; rows of one length share one
    draw of resamples (so any two are compared paired), and `strata` applies to rows of its length."""
    by_length = {}
    for key, values in rows.items():
        by_length.setdefault(len(values), []).append(key)
    out = {}
    for n, keys in by_length.items():
        stacked = torch.stack([torch.as_tensor(rows[k], dtype=torch.float64).cpu() for k in keys])
        grouped = strata if strata is not None and len(strata) == n else None
        values, bounds = mean_interval(stacked, resamples, seed, grouped, level)
        out.update({k: (float(v), tuple(float(b) for b in bound)) for k, v, bound in zip(keys, values, bounds)})
    return out


def _rounded(value: float, digits: int = 2):
    return round(value, digits)


def summarize_measures(per_item: dict, higher_is_better: dict, baseline: str = None, resamples: int = RESAMPLES,
                       seed: int = 0, strata=None, level: float = LEVEL) -> dict:
    """Each method's measures with intervals, and its paired differences from `baseline`.

    `per_item`: {method: {measure: (n,) values per image or word}}, the items in the same order for
    every method (the measures of `higher_is_better` are read; others are left alone).
    Returns {method: {measure: mean, measure_ci95: [low, high], ..., "against_<baseline>": {measure:
    {"difference", "difference_ci95", "verdict"}}}}, the baseline itself without the comparison.
    """
    rows = {}
    for method, measures in per_item.items():
        for measure in higher_is_better:
            if measure in measures:
                rows[(method, measure)] = measures[measure]
                if baseline in per_item and method != baseline and measure in per_item[baseline]:
                    rows[(method, measure, baseline)] = measures[measure] - per_item[baseline][measure]
    found = intervals(rows, resamples, seed, strata, level)
    summary = {}
    for method, measures in per_item.items():
        result = summary.setdefault(method, {})
        for measure in higher_is_better:
            if (method, measure) not in found:
                continue
            value, bounds = found[(method, measure)]
            result[measure], result[f"{measure}_ci95"] = _rounded(value), [_rounded(b) for b in bounds]
            if (method, measure, baseline) in found:
                difference, bounds = found[(method, measure, baseline)]
                result.setdefault(f"against_{baseline}", {})[measure] = {
                    "difference": _rounded(difference), "difference_ci95": [_rounded(b) for b in bounds],
                    "verdict": compare(bounds, higher_is_better[measure])}
    return summary


def pairwise_differences(per_item: dict, methods: list, higher_is_better: dict, resamples: int = RESAMPLES,
                         seed: int = 0, strata=None, level: float = LEVEL) -> dict:
    """{"A - B": {measure: {"difference", "difference_ci95", "verdict"}}} for every pair of `methods`
    (A before B in the list), paired over the same items; the verdict is A's."""
    rows = {}
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            for measure in higher_is_better:
                if measure in per_item[a] and measure in per_item[b]:
                    rows[(a, b, measure)] = per_item[a][measure] - per_item[b][measure]
    found = intervals(rows, resamples, seed, strata, level)
    out = {}
    for (a, b, measure), (difference, bounds) in found.items():
        out.setdefault(f"{a} - {b}", {})[measure] = {
            "difference": _rounded(difference), "difference_ci95": [_rounded(v) for v in bounds],
            "verdict": compare(bounds, higher_is_better[measure])}
    return out


def leader(per_item: dict, methods: list, measure: str, higher_is_better: bool, resamples: int = RESAMPLES,
           seed: int = 0, strata=None, level: float = LEVEL) -> dict:
    """The best of `methods` by `measure`'s estimate, and its lead over the next best with the lead's
    paired interval: {"best", "next", "measure", "lead", "lead_ci95", "verdict"}."""
    scored = sorted(methods, key=lambda m: float(estimate(per_item[m][measure], strata if strata is not None
                                                          and len(strata) == len(per_item[m][measure]) else None)),
                    reverse=higher_is_better)
    if len(scored) < 2:
        return {"best": scored[0] if scored else None, "next": None, "measure": measure}
    best, runner_up = scored[:2]
    sign = 1.0 if higher_is_better else -1.0
    lead, bounds = intervals({"lead": sign * (per_item[best][measure] - per_item[runner_up][measure])},
                             resamples, seed, strata, level)["lead"]
    return {"best": best, "next": runner_up, "measure": measure, "lead": _rounded(lead),
            "lead_ci95": [_rounded(b) for b in bounds], "verdict": compare(bounds, True)}


def interval_text(value, interval) -> str:
    """A table cell: '70.4 [68.1, 72.6]', or '-' for a missing number."""
    if value is None:
        return "-"
    return f"{value:.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"
