"""The grounding report's figure: correctness and pointing game per method, and the deletion curves
when the deletion test ran."""
import numpy as np
from matplotlib.figure import Figure


def grounding_figure(summary: dict, fractions, title: str) -> Figure:
    """Left: bars of attention correctness and pointing game (%) per method, decoder layers first,
    then relevancy and the baselines. Right, when the deletion test ran: each method's deletion
    curves, most relevant cells first (solid) and least relevant first (dashed)."""
    methods = list(summary)
    keys = ("deletion_most_curve", "deletion_least_curve")
    deleted = any(summary[m].get(key) for m in methods for key in keys)
    fig = Figure(figsize=(12, 4.5) if deleted else (7, 4.5), layout="constrained")
    if deleted:
        bars, curves = fig.subplots(1, 2, width_ratios=(1.3, 1))
    else:
        bars = fig.subplots()
    x = np.arange(len(methods))
    for offset, key, label in ((-0.2, "correctness", "attention correctness"), (0.2, "pointing_game", "pointing game")):
        values = [summary[m][key] if summary[m][key] is not None else 0.0 for m in methods]
        bars.bar(x + offset, values, width=0.4, label=label)
    bars.set_xticks(x, methods, rotation=30, ha="right")
    bars.set_ylabel("%")
    bars.set_ylim(0, 100)
    bars.legend(loc="upper left")
    bars.set_title("Does the word's map point at its object?")
    if deleted:
        percent = 100 * np.asarray(fractions)
        for index, method in enumerate(methods):
            colour = f"C{index % 10}"
            for key, style in zip(keys, ("-", "--")):
                if summary[method].get(key):
                    curves.plot(percent, summary[method][key], style, color=colour,
                                label=method if style == "-" else None)
        curves.set_xlabel("cells removed (%): most relevant first (solid), least relevant first (dashed)")
        curves.set_ylabel("word probability / intact")
        curves.set_title("Deletion test")
        curves.legend(fontsize=8)
    fig.suptitle(title)
    return fig
