"""Checks of flag values against the model they apply to, each one line for the user."""
from data.io import UserError


def layer_index(layer: int, num_layers: int, owner: str, flag: str = "--layer") -> int:
    """`layer` as an index from 0; negative values count from the end, as in Python."""
    if not -num_layers <= layer < num_layers:
        raise UserError(f"{flag} {layer} is out of range: {owner} has {num_layers} layers "
                        f"(0..{num_layers - 1}, or -{num_layers}..-1)")
    return layer % num_layers
