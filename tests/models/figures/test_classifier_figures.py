"""The confusion and perturbation figures: what they draw, read back from the figure objects."""
import numpy as np
import torch

from models.figures.classifier import confusion_figure, perturbation_figure


def test_confusion_figure_colours_shares_writes_counts_and_names_every_class():
    confusion = torch.tensor([[3, 1, 0], [0, 0, 0], [0, 2, 4]])
    fig = confusion_figure(confusion, ["cat", "dog", "bird"])
    ax = fig.axes[0]
    share = ax.images[0].get_array()
    assert np.allclose(share, [[0.75, 0.25, 0], [0, 0, 0], [0, 1 / 3, 2 / 3]])  # a class with no images stays 0
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4"]  # non-zero cells only
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0 cat", "1 dog", "2 bird"]
    assert ax.get_title() == "Confusion matrix: 70.00% correct (7/10)"
    assert fig.axes[1].get_ylabel() == "share of the true class"  # the colour bar


def test_perturbation_figure_draws_both_tests_with_their_auc_and_random_dashed():
    fractions = [0.0, 0.5, 0.9]
    summary = {"relevancy": {"positive_curve": [1.0, 0.4, 0.1], "positive_auc": 31.0,
                             "negative_curve": [1.0, 0.9, 0.8], "negative_auc": 88.5},
               "random": {"positive_curve": [1.0, 0.6, 0.3], "positive_auc": 50.0,
                          "negative_curve": [1.0, 0.6, 0.3], "negative_auc": 50.0}}
    fig = perturbation_figure(summary, fractions, title="micro")
    positive, negative = fig.axes
    assert "most relevant" in positive.get_title() and "least relevant" in negative.get_title()
    labels = [t.get_text() for t in negative.get_legend().get_texts()]
    assert labels == ["relevancy (AUC 88.5)", "random (AUC 50.0)"]
    relevancy, random = positive.get_lines()
    assert list(relevancy.get_xdata()) == [0, 50, 90] and list(relevancy.get_ydata()) == [100, 40, 10]
    assert random.get_linestyle() == "--" and relevancy.get_linestyle() == "-"
    assert fig._suptitle.get_text() == "micro"
