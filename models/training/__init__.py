"""Training and running a model: the epoch loop, the batch loop, optimizers and schedules, torchrun, device and precision, the background checkpoint writer."""
