"""The Oxford-IIIT Pet labels and the `{label}_{id}.jpg` naming of the course's split."""
from pathlib import Path

from .io import UserError

# Label = Oxford class id - 1, in Oxford's order.
CLASS_NAMES = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "Bengal", "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
    "japanese_chin", "keeshond", "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland",
    "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard", "samoyed",
    "scottish_terrier", "shiba_inu", "Siamese", "Sphynx", "staffordshire_bull_terrier",
    "wheaten_terrier", "yorkshire_terrier",
)
NUM_CLASSES = len(CLASS_NAMES)


def label_from_name(path) -> int | None:
    """The label of a `{label}_{id}.ext` file name, or None when the name carries none.

    Only ASCII digits make a label: `str.isdigit` also accepts digits such as '²' that `int` refuses."""
    head, sep, _ = Path(path).stem.partition("_")
    return int(head) if sep and head.isascii() and head.isdigit() else None


def parse_label(path, num_classes: int = NUM_CLASSES) -> int:
    """The label of a training file, checked to lie in 0..num_classes-1."""
    label = label_from_name(path)
    if label is None:
        raise UserError(f"cannot read a label from {path}: labeled files must be named "
                        "{label}_{id}.jpg, e.g. 12_3705.jpg")
    if not 0 <= label < num_classes:
        raise UserError(f"{path}: label {label} is outside 0..{num_classes - 1}")
    return label


def default_class_names(num_classes: int) -> list:
    return list(CLASS_NAMES) if num_classes == NUM_CLASSES else [str(i) for i in range(num_classes)]


def class_names_or_default(names, num_classes: int) -> list:
    """`names` when given, else the default names of `num_classes` classes (a config written before
    it recorded them, or a folder without classes.txt)."""
    return list(names or default_class_names(num_classes))


def read_class_names(data_dir, num_classes: int = NUM_CLASSES) -> list:
    """Names from `DATA_DIR/classes.txt` (one per line, label order) when present, else the breeds."""
    path = Path(data_dir) / "classes.txt"
    if not path.is_file():
        return default_class_names(num_classes)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != num_classes:
        raise UserError(f"{path} names {len(names)} classes, but there are {num_classes}")
    return names
