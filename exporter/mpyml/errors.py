"""The exceptions and warnings mpyml raises, whatever the model family or file format."""

from __future__ import annotations


class ExportError(ValueError):
    """The estimator cannot be represented in the requested model format."""


class FormatError(ValueError):
    """A model file that a device reader would refuse."""


class PrecisionWarning(UserWarning):
    """The export asked for may make the device disagree with the PC on some inputs."""
