"""The networks and their builders: package ViTs by name, attention modes, weights and the checkpoint format."""
