"""emlcnn: small neural networks (dense, Conv1D/Conv2D, depthwise, pooling) exported by mpyml, run in C.

Typing stub for editors; the module itself is mpy/<arch>_6.3/emlcnn.mpy.
Model files are written on the PC by ``mpyml.export(model, path, quantize=None | 'int8',
representative_data=X)`` (format: docs/formats.md, mpyml-nets).
"""

from array import array
from typing import BinaryIO, Literal, Optional, Union

class Net:
    """A network made by :func:`new`; empty until :func:`load_model` succeeds."""

    arena_bytes: int  # the arena given to new() (rounded up to 4)
    loaded: bool
    # None while no model is loaded:
    dtype: Optional[Literal["float32", "int8"]]
    n_inputs: Optional[int]
    n_outputs: Optional[int]
    n_layers: Optional[int]
    arena_needed: Optional[int]  # arena bytes the loaded model uses
    weights_bytes: Optional[int]  # parameter bytes, read in place from the loaded file
    input_scale: Optional[float]  # int8 models: real input = input_scale * (code - input_zero_point)
    input_zero_point: Optional[int]
    classes: Optional[list]  # an MLPClassifier's classes_ (int, str, bool or float); None without labels
    feature_names: Optional[list]  # feature_names_in_ (str); None without them

    def predict(self, x: array, out: array) -> array:
        """One input of n_inputs values: array('f'), or for int8 models array('b') of input codes.
        Fills out (array('f') of n_outputs) and returns it; allocates nothing."""
    def unload(self) -> None:
        """Forgets the loaded model (the arena stays)."""

def new(arena_bytes: int) -> Net:
    """An empty network with an activation arena of arena_bytes (see :func:`arena_bytes`)."""

def arena_bytes(f: Union[str, BinaryIO]) -> int:
    """The arena bytes the model file (a path, or a file opened 'rb') needs, from its header."""

def load_model(net: Net, f: Union[str, BinaryIO]) -> None:
    """Reads a model file (a path, or a file opened 'rb') into net. Raises ValueError
    ('model file: ...') for a truncated or corrupt file, a wrong magic or version, a CRC
    mismatch, an invalid layer ('layer N: ...') or an arena that is too small (by how much);
    the network is then empty."""
