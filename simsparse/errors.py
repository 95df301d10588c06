"""Errors that reach the user. Each carries one line: what is wrong and how to fix it.

The CLI turns any `SimSparseError` into that line on stderr and exit code 2; anything
else is an internal error (exit 1).
"""


class SimSparseError(Exception):
    """Base of every error caused by user input (files, specs, arguments)."""


class CheckpointError(SimSparseError):
    """A checkpoint cannot be read, is not recognised, or holds inconsistent tensors."""


class SpecError(SimSparseError):
    """A YAML spec (arch, workload, recipe, sweep) or a --set override is invalid."""


class PatternError(SimSparseError):
    """A --pattern string is not understood."""


class GeometryError(SimSparseError):
    """A mask does not fit the layer it binds to, or a model cannot be traced/shrunk."""


class UnknownNameError(SimSparseError):
    """A registry lookup failed (arch, workload, kernel, method, ...)."""


class MeasurementError(SimSparseError):
    """A measurement cannot run here (e.g. --device cuda without CUDA)."""
