"""emliir: cascades of second-order IIR sections (scipy's sos), filtered in C.

Typing stub for editors; the module itself is mpy/<arch>_6.3/emliir.mpy.
Coefficients come from scipy on the PC (``scipy.signal.butter(..., output='sos')``
and friends); ``mpyml.iir`` quantizes them to Q15 and writes coefficients files
(format ``mpyml-iir``: docs/formats.md).
"""

from array import array
from typing import BinaryIO, Literal, TextIO, Union

class IIR:
    """A filter made by :func:`new`, :func:`new_q15` or :func:`load`. It keeps its state between
    ``run`` calls, so a signal filtered in chunks gives exactly the result of filtering it in one piece."""

    n_stages: int
    typecode: Literal["f", "h"]  # the array typecode run() takes: float32 or Q15 (int16)

    def run(self, values: array) -> array:
        """Filters values (array('f') for float filters, array('h') for Q15 filters, or a writable
        memoryview of one) in place, continuing from the state the last call left; returns values.

        Allocates nothing. Float: direct form II transposed in float32, the same arithmetic as
        scipy.signal.sosfilt on float32 sos and input. Q15: direct form I with an int32
        accumulator, rounding, and outputs saturated to -32768..32767.
        """

    def reset(self) -> None:
        """Back to the zero state, as right after the filter was made."""

def new(sos: array) -> IIR:
    """A float32 filter from array('f') of 6 numbers per stage: scipy's sos rows
    (b0, b1, b2, a0, a1, a2) flattened. a0 must be 1; NaN or infinite coefficients,
    or a length that is not a positive multiple of 6, raise ValueError."""

def new_q15(sos: array) -> IIR:
    """A Q15 filter from array('h') of 6 integers per stage, as mpyml.iir.quantize_q15 makes them:
    (b0, b1, b2, a0, a1, a2) times 2**frac with a0 = 2**frac (frac 0..14 per stage), and
    |b0|+|b1|+|b2|+|a1|+|a2| <= 65535 so that the int32 accumulator cannot overflow."""

def load(f: Union[TextIO, BinaryIO, str]) -> IIR:
    """A filter (float32 or Q15, as the file says) from a coefficients file written by
    mpyml.iir.save: an open file or a path. Errors raise ValueError naming the file line."""
