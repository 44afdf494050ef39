"""Accuracy figures of predicted labels against true ones: pure tensor math."""
import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true label, column = predicted label."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def accuracy(confusion: torch.Tensor) -> float:
    """Overall accuracy in percent."""
    return 100.0 * confusion.diag().sum().item() / max(confusion.sum().item(), 1)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Accuracy in percent for each true class; NaN for a class with no images."""
    support = confusion.sum(dim=1).double()
    return 100.0 * confusion.diag().double() / support.where(support > 0, torch.tensor(float("nan")))
