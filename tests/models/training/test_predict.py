"""Evaluation and prediction run a model through the same forward, normalised by the model's own
input contract: the same logits, loss and accuracy."""
import contextlib

import torch
import torch.nn.functional as F

from models.training.accuracy import accuracy, confusion_matrix
from models.training.engine import classification_step, evaluate, make_loss_step
from models.training.forward import batch_logits
from models.training.predict import predict
from models.vit import random_vit, set_input_config

CPU = torch.device("cpu")
AMP = contextlib.nullcontext()  # the CPU's autocast: none
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)  # not the package's: both paths must use the model's


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
    model = set_input_config(random_vit("micro"), MEAN, STD).eval()
    loader = uint8_batches()
    logits, labels = predict(model, loader, CPU)
    result = evaluate(model, loader, classification_step(model, CPU, AMP))

    assert logits.dtype == torch.float32 and logits.shape == (len(labels), 37)
    assert logits.argmax(1).unique().numel() > 1  # a non-zero head: the logits do not all tie
    assert result["val_seen"] == len(labels)
    assert result["val_acc"] == accuracy(confusion_matrix(logits.argmax(1), labels, 37))
    assert abs(result["val_loss"] - F.cross_entropy(logits, labels).item()) < 1e-5

    # the training step's logits are prediction's, bit for bit
    with torch.no_grad():
        for (images, batch_labels), start in zip(loader, (0, 8, 16)):
            _, step_logits = make_loss_step(model, CPU, AMP)(images, batch_labels)
            assert torch.equal(step_logits, logits[start:start + len(batch_labels)])
            assert torch.equal(step_logits, batch_logits(model, images, CPU, AMP))
    float_images = (images.float() / 255 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert torch.allclose(batch_logits(model, float_images, CPU, AMP), step_logits, atol=1e-5)
