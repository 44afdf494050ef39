"""The settings of a run that a resumed run keeps, and the ones that never change what a model learns.

A resumed run takes every setting from its config.json; on the command line it accepts only the
flags that do not change what the model learns (RESUME_FREE_FLAGS), the same values again, and the
two that say how long it trains (LENGTH_SETTINGS): a larger `--epochs` and a new `--patience`. The
same settings may differ between a run's config.json and its last.pt.
"""
from .io import UserError

# Where the run wrote and how the program ran: none of them changes what the model learns
# (the attention kernel, compilation, checkpointing and the image cache compute the same function).
IGNORED_SETTINGS = ("output_dir", "resume", "num_workers", "cache_images", "progress", "device", "attention", "compile",
                    "grad_checkpointing", "class_names", "mean", "std", "save_every")
# Where the data lives (a moved folder) and how the program runs: never what the model learns.
RESUME_FREE_FLAGS = (*IGNORED_SETTINGS, "data_dir")
LENGTH_SETTINGS = ("epochs", "patience")  # a resumed run may train longer (never shorter), with another patience
CHANGEABLE_ON_RESUME = (*RESUME_FREE_FLAGS, *LENGTH_SETTINGS)
_MISSING = object()  # tells a setting absent from a config from one set to None


def differing_settings(configs: list) -> list:
    """The setting names whose values are not the same in all configs (a missing one counts as different)."""
    names = []
    for config in configs:
        names += [k for k in config if k not in names and k not in IGNORED_SETTINGS]
    return [k for k in names if any(c.get(k, _MISSING) != configs[0].get(k, _MISSING) for c in configs)]


def resumed_settings(defaults: dict, saved: dict, given: dict) -> dict:
    """The settings of a resumed run: `saved` (its config.json) over the program's `defaults`, with
    the `given` command-line flags that may change. Any other flag with a new value is refused."""
    settings = {**defaults, **saved}
    for flag, value in given.items():
        if flag == "epochs" and value < settings["epochs"]:
            raise UserError(f"--epochs {value}: the run is set to {settings['epochs']} epochs; a resumed run "
                            f"can be extended (--epochs larger than {settings['epochs']}), not shortened")
        if flag not in CHANGEABLE_ON_RESUME and value != settings.get(flag):
            raise UserError(f"--{flag} would change what the resumed run learns (it was started with "
                            f"{flag} = {settings.get(flag)!r}); a resumed run keeps the settings of its "
                            "config.json: start a new run in another --output_dir to change them")
    settings.update(given)
    return settings
