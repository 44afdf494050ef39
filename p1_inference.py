"""Problem 1 inference: predict a breed label for every image in a folder and write them as a CSV.

The model is rebuilt from the checkpoint alone (architecture, image size and normalisation come from
its config). The CSV has the header `filename,label` and one row per .jpg/.jpeg/.png file, sorted by
name; it is written atomically, so a failed run leaves no partial file. A folder holding a file name
that is not valid UTF-8 (which a UTF-8 CSV cannot name) is refused before any work. When every file
name carries a label (`{label}_{id}.jpg`, like p1_data/val), accuracy and per-class accuracy are
printed too.

    python p1_inference.py --ckpt checkpoints/p1_best.pt --img_dir p1_data/val --out_csv pred.csv
"""
import argparse
import csv
import os
import time

from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError, atomic_path
import torch

from data.datasets import ImageFolder
from data.images import list_images, some_names
from data.outputs import check_distinct_outputs, check_output_file
from data.pets import default_class_names, label_from_name
from data.transforms import eval_transform_from_config, normalization
from models.checkpoint import model_from_checkpoint
from models.training.predict import accuracy, confusion_matrix, inference_model, make_loader, per_class_accuracy, predict
from models.figures.classifier import confusion_figure
from models.figures.plots import check_figure_path, save_figure
from models.training.runtime import cpu_share, default_num_workers, resolve_device


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="checkpoint written by p1_train.py (e.g. RUN/best.pt)")
    parser.add_argument("--img_dir", required=True, help="folder of .jpg/.jpeg/.png images; any file names")
    parser.add_argument("--out_csv", required=True, help="CSV to write: header filename,label")
    parser.add_argument("--batch_size", type=int, default=32, help="images per forward pass (default: 32)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--num_workers", type=int, default=None,
                        help="processes decoding images in parallel, 0 to decode in the main process "
                             "(default: min(8, CPUs) with a GPU, 0 on a CPU)")
    parser.add_argument("--skip_bad_images", action="store_true",
                        help="leave unreadable images out of the CSV with a warning instead of stopping")
    parser.add_argument("--confusion", default=None, metavar="PNG",
                        help="also draw the confusion matrix here (needs {label}_{id} file names)")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not isinstance(args.img_dir, str):  # argparse reads --img_dir=-- as no value at all
        raise UserError("--img_dir needs a folder; for a folder named '--', write ./--")
    if args.batch_size < 1 or (args.num_workers or 0) < 0:
        raise UserError("--batch_size must be at least 1 and --num_workers at least 0")
    inputs = [args.ckpt, args.img_dir]
    out_csv = check_output_file(args.out_csv, "--out_csv", inputs)
    if args.confusion:
        check_figure_path(args.confusion, "--confusion", inputs)
    check_distinct_outputs({"--out_csv": args.out_csv, "--confusion": args.confusion})
    files = list_images(args.img_dir)
    check_csv_names(files, args.img_dir)
    device = resolve_device(args.device)
    start = time.perf_counter()
    model, config = model_from_checkpoint(args.ckpt)
    model = inference_model(model, device)
    loaded = time.perf_counter()

    # The temporary file is made first, so an unwritable output fails before any work is done.
    with atomic_path(out_csv) as tmp:
        # Every image is decoded once here, so a corrupt file is named before the model runs.
        # Workers hand over uint8 images; predict() normalises them on the device with the config's values.
        dataset = ImageFolder(args.img_dir, eval_transform_from_config(config, to_float=False), labeled=False,
                              files=files, skip_bad_images=args.skip_bad_images, check_threads=cpu_share())
        labels = folder_labels(dataset.files, config["num_classes"])
        if args.confusion and labels is None:
            raise UserError(f"--confusion needs every file name in {args.img_dir} to be {{label}}_{{id}}")
        checked = time.perf_counter()
        num_workers = default_num_workers(device) if args.num_workers is None else args.num_workers
        loader = make_loader(dataset, args.batch_size, num_workers, device)
        mean, std = normalization(config)
        logits, indices = predict(model, loader, device, progress=True, mean=mean, std=std)
        predictions = logits.argmax(dim=1)
        write_predictions(tmp, [dataset.files[i].name for i in indices], predictions.tolist())
    done = time.perf_counter()
    print(f"wrote {len(predictions)} predictions to {out_csv}")

    if labels is not None:
        labels = labels[indices]
        class_names = config.get("class_names") or default_class_names(config["num_classes"])
        confusion = confusion_matrix(predictions, labels, config["num_classes"])
        print(accuracy_report(confusion, class_names))
        if args.confusion:
            save_figure(confusion_figure(confusion, class_names), args.confusion)
            print(f"wrote the confusion matrix to {args.confusion}")
    n = len(predictions)
    print(f"time: {n} images in {done - start:.1f} s, {n / (done - loaded):.1f} images/s from files to "
          f"labels (model loading {loaded - start:.1f} s, image check {checked - loaded:.1f} s, "
          f"prediction {done - checked:.1f} s, device {device})")


def folder_labels(files, num_classes: int):
    """The labels in the file names as a tensor, or None unless every name is a valid `{label}_{id}`."""
    labels = [label_from_name(f) for f in files]
    if any(label is None or not 0 <= label < num_classes for label in labels):
        return None
    return torch.tensor(labels)


def check_csv_names(files, folder) -> None:
    """Refuse, before any work, file names the UTF-8 CSV cannot hold: bytes that are not UTF-8, which
    Python keeps as lone surrogates."""
    unwritable = []
    for path in files:
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:
            unwritable.append(os.fsencode(path.name).decode("utf-8", "backslashreplace"))
    if unwritable:
        raise UserError(f"{len(unwritable)} file name(s) in {folder} are not valid UTF-8, so the CSV cannot "
                        f"name them ({some_names(unwritable)}); rename them, e.g. with convmv")


def write_predictions(path, filenames, labels) -> None:
    """The CSV the grader reads: `filename,label`, rows sorted by file name, UTF-8 without BOM."""
    rows = sorted(zip(filenames, labels))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["filename", "label"])
        writer.writerows(rows)


def accuracy_report(confusion: torch.Tensor, class_names) -> str:
    correct, total = confusion.diag().sum().item(), confusion.sum().item()
    lines = [f"accuracy: {accuracy(confusion):.2f}% ({correct}/{total})", "per-class accuracy:"]
    for label, acc in enumerate(per_class_accuracy(confusion).tolist()):
        support = confusion[label].sum().item()
        if support:
            lines.append(f"  {label:2d} {class_names[label]:<28s} {acc:6.2f}% "
                         f"({confusion[label, label].item()}/{support})")
    return "\n".join(lines)


if __name__ == "__main__":
    run_main(main)
