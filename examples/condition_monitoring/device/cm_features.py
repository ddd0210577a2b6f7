# Condition-monitoring features of a vibration signal, window by window. Portable: runs on the
# device with emliir and emlfft, and on CPython with the host's numpy mirrors of both (same
# arithmetic, so the features are bit-identical on CPython and the unix port).
import math
from array import array


class Features:
    """Features of consecutive windows of `n` samples (array('f'), in g) of one signal.

    filters: band-pass IIR filters with `run(values)` (emliir.load(...) objects), kept running
    across windows. fft: an object with `power(x, out)` for n points (emlfft.FFT(n)). bins: per
    FFT band, the first and last-plus-one bin. Per window, into an array('f') of
    len(filters) + len(bins) values: the natural log of each filter output's RMS, then the
    natural log of the energy (sum of |X[k]|**2) in each band of the Hann-windowed window.
    Allocates nothing per window."""

    def __init__(self, filters, fft, n, bins):
        self.filters, self.fft, self.n, self.bins = filters, fft, n, bins
        # numpy.hanning(n): 0.5 - 0.5 cos(2 pi i / (n - 1))
        self.hann = array("f", [0.5 - 0.5 * math.cos(2.0 * math.pi * i / (n - 1)) for i in range(n)])
        self.work = array("f", bytes(4 * n))
        self.spectrum = array("f", bytes(4 * (n // 2 + 1)))
        self.out = array("f", bytes(4 * (len(filters) + len(bins))))

    def compute(self, samples):
        """Features of the next window (array('f') of n samples, left unchanged); returns self.out."""
        n, work, out = self.n, self.work, self.out
        at = 0
        for f in self.filters:
            for i in range(n):
                work[i] = samples[i]
            f.run(work)
            total = 0.0
            for i in range(n):
                v = work[i]
                total += v * v
            out[at] = 0.5 * math.log(total / n + 1e-12)
            at += 1
        hann = self.hann
        for i in range(n):
            work[i] = samples[i] * hann[i]
        spectrum = self.fft.power(work, self.spectrum)
        for lo, hi in self.bins:
            total = 0.0
            for k in range(lo, hi):
                total += spectrum[k]
            out[at] = math.log(total + 1e-12)
            at += 1
        return out
