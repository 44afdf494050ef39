"""Evaluation and prediction run a model through the same forward: the same logits, loss and accuracy."""
import torch
import torch.nn.functional as F

from models.training.engine import evaluate, make_loss_step
from models.training.predict import accuracy, batch_logits, confusion_matrix, predict
from models.vit import random_vit

CPU = torch.device("cpu")
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # not the package's: both paths must use the ones given


class Loader(list):
    batch_size = 8


def uint8_batches(count=3, size=32, batch=8, classes=37):
    """(uint8 images, labels) batches; the last one partial."""
    generator = torch.Generator().manual_seed(0)
    sizes = [batch] * (count - 1) + [batch // 2 + 1]
    return Loader((torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator),
                   torch.randint(0, classes, (n,), generator=generator)) for n in sizes)


def test_evaluate_and_predict_agree_on_uint8_batches():
    torch.manual_seed(0)
    model = random_vit("micro").eval()
    loader = uint8_batches()
    logits, labels = predict(model, loader, CPU, mean=MEAN, std=STD)
    result = evaluate(model, loader, CPU, progress=False, mean=MEAN, std=STD)

    assert logits.dtype == torch.float32 and logits.shape == (len(labels), 37)
    assert logits.argmax(1).unique().numel() > 1  # a non-zero head: the logits do not all tie
    assert result["val_seen"] == len(labels)
    assert result["val_acc"] == accuracy(confusion_matrix(logits.argmax(1), labels, 37))
    assert abs(result["val_loss"] - F.cross_entropy(logits, labels).item()) < 1e-5

    # the training step's logits are prediction's, bit for bit
    with torch.no_grad():
        for (images, batch_labels), start in zip(loader, (0, 8, 16)):
            _, step_logits = make_loss_step(model, CPU, mean=MEAN, std=STD)(images, batch_labels)
            assert torch.equal(step_logits, logits[start:start + len(batch_labels)])
            assert torch.equal(step_logits, batch_logits(model, images, CPU, "bf16", MEAN, STD))
