"""The networks and their builders: package ViTs by name, attention modes, weights, the checkpoint format and the rules every run setting obeys."""
