"""The flags several scripts share, each declared here once: --device, --batch_size, --num_workers.
Their values obey the one rule table of models/training/settings.py (`check_flags`)."""
from .settings import TRAINING_RULES, check_settings


def add_device_flag(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")


def add_batch_size_flag(parser, default: int, what: str) -> None:
    """--batch_size with this script's `default`; `what` says what a batch is ("images per pass")."""
    parser.add_argument("--batch_size", type=int, default=default, metavar="N",
                        help=f"{what} (default: %(default)s)")


def add_num_workers_flag(parser, default=None) -> None:
    """--num_workers; None lets the script choose by the device (runtime.default_num_workers)."""
    chosen = ("on a GPU the CPUs available to this process divided by the processes per node, at most 8; "
              "on the CPU 0") if default is None else "%(default)s"
    parser.add_argument("--num_workers", type=int, default=default,
                        help=f"DataLoader worker processes decoding images (default: {chosen})")


def check_flags(args, *names: str) -> None:
    """The flags `names` of `args` obey their rules (TRAINING_RULES); else one line naming the flag."""
    check_settings({name: getattr(args, name) for name in names}, TRAINING_RULES)
