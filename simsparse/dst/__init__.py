"""The PyTorch DST trainer: methods, schedules, density distributions, FLOPs accounting."""
