"""emlfft: FFT of 8..4096 points in float32, in C.

Typing stub for editors; the module itself is mpy/<arch>_6.3/emlfft.mpy.
Every transform matches numpy.fft (same sign convention and scaling) within
max abs error <= 1e-5 * n * max|x| (measured: below 1e-8 * n * max|x|).
NaN and inf in the input propagate to the output.

Memory: FFT(n) allocates 8*n bytes once (twiddle table and scratch, e.g. 8 KB
for n = 1024, 32 KB for n = 4096) plus the object; run, inverse, magnitude and
power allocate nothing.
"""

from array import array

class FFT:
    """A transform of n points, n a power of two from 8 to 4096.

    FFT(n) raises ValueError for any other n (TypeError for a non-integer),
    MemoryError when the heap cannot hold 8*n bytes.
    """

    n: int  # number of points (read-only)

    def __init__(self, n: int) -> None: ...

    def run(self, real: array, imag: array) -> None:
        """Forward transform in place: X[k] = sum_j x[j] * exp(-2j*pi*j*k/n), as numpy.fft.fft.

        real and imag: two different array('f') of n values each (real and imaginary
        parts; zeros in imag for real input). TypeError for another typecode or
        object, ValueError for another length or the same array twice.
        """

    def inverse(self, real: array, imag: array) -> None:
        """Inverse transform in place, scaled by 1/n as numpy.fft.ifft: inverse(run(x)) == x
        to float32 rounding. Same arguments as run."""

    def magnitude(self, x: array, out: array) -> array:
        """|X[k]| for k = 0..n/2 into out, X the transform of the n real samples in x:
        numpy.abs(numpy.fft.rfft(x)), unscaled (divide by n yourself for amplitudes).

        x: array('f') of n values, only read. out: array('f') of n/2 + 1 values.
        Returns out.
        """

    def power(self, x: array, out: array) -> array:
        """|X[k]|**2 for k = 0..n/2 into out: numpy.abs(numpy.fft.rfft(x))**2, unscaled
        (no 1/n, no one-sided doubling). Same arguments as magnitude; returns out."""
