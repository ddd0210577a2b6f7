"""Windowing and time-domain features of accelerometer data, for MicroPython and CPython alike.

One module runs on the PC for training and on the device for prediction, so the model
sees the same numbers in both places. Samples are integers (e.g. int16 readings) stored
interleaved, one row of `n_axes` values per sample, as `.npy` files of shape (n, axes) hold them.

    windower = Windower(window=100, hop=50, n_axes=3)
    out = array.array('f', [0.0] * n_features(3))
    for chunk in reader.read_data_chunks(150):
        for window in windower.push(chunk):
            features(window, 3, out)              # float32 features, feature_names(3) order

Exactness: every feature is its exact value (a ratio of integer sums, or the square root of
one) rounded once to the nearest float32, ties to even, computed with integer arithmetic
only. The per-sample magnitude is sqrt(x^2 + y^2 + ...) rounded to the nearest integer, also
exactly. So the float32 bits are the same on CPython, on ports whose floats are double and
on ports whose floats are float32, whatever their libm; `out` (an array('f')) receives the
bits directly, so even ports with 30-bit float objects (MICROPY_OBJ_REPR_C: esp8266, some
stm32 boards) hand the model the exact values (the list features() returns without `out`
holds Python floats, which lose their last 2 bits there). Python floats appear only as first
guesses of integer square roots, which integer arithmetic then corrects. The sums need
MicroPython's long integers (n * sum of squares exceeds 31 bits).

Per channel (each axis, then the magnitude): mean, std (population), min, max, percentiles
interpolated linearly as numpy.percentile does, energy (mean of squares), mean crossings
(sign changes of x - mean), mean absolute difference of consecutive samples; then the
Pearson correlation of each pair of axes (0 when an axis is constant).
"""

import array
import math
import struct

PERCENTILES = (10, 25, 50, 75, 90)  # in percent
_CHANNEL_FEATURES = ("mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90",
                     "energy", "mean_crossings", "mean_abs_diff")
_TWO23 = 1 << 23
_TWO24 = 1 << 24


def feature_names(n_axes=3, axis_names=None):
    """Names of the features in the order features() returns them."""
    if axis_names is None:
        axis_names = ["axis%d" % i for i in range(n_axes)]
    channels = list(axis_names) + ["magnitude"]
    names = []
    for channel in channels:
        for feature in _CHANNEL_FEATURES:
            names.append("%s_%s" % (channel, feature))
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            names.append("corr_%s_%s" % (axis_names[a], axis_names[b]))
    return names


def n_features(n_axes=3):
    return len(_CHANNEL_FEATURES) * (n_axes + 1) + n_axes * (n_axes - 1) // 2


_BYTE_BITS = bytes(len(bin(i)) - 2 if i else 0 for i in range(256))


def _bit_length(x):
    """Number of bits of an integer x >= 0 (MicroPython's int has no bit_length)."""
    n = 0
    while x >= 256:
        x >>= 8
        n += 8
    return n + _BYTE_BITS[x]


def _isqrt(x):
    """floor(sqrt(x)) of an integer x >= 0: a float guess, one Newton step, then exact corrections."""
    if x < 2:
        return x
    r = int(math.sqrt(x))
    if r > 0:
        r = (r + x // r) >> 1
    while r * r > x:
        r -= 1
    while (r + 1) * (r + 1) <= x:
        r += 1
    return r


# The helpers below keep few local variables: MicroPython allocates the frame of a function
# with more than about 11 locals and stack slots on the heap at every call, which costs
# more than their arithmetic.

def _pack(mantissa, shift):
    """Float32 bits of mantissa * 2**-shift, mantissa in [2**23, 2**24]."""
    if mantissa == _TWO24:
        mantissa = _TWO23
        shift -= 1
    shift = 150 - shift  # the biased exponent
    if not 1 <= shift <= 254:
        raise ValueError("feature value out of the normal float32 range (2**%d)" % (shift - 127))
    return (shift << 23) | (mantissa - _TWO23)


def _ratio_bits(num, den):
    """Float32 bits of the float32 nearest to num / den (integers, den > 0), ties to even."""
    if num <= 0:
        return 0 if num == 0 else 0x80000000 | _ratio_bits(-num, den)
    shift = 24 - _bit_length(num) + _bit_length(den)  # num * 2**shift / den in [2**23, 2**25)
    if shift >= 0:
        num <<= shift
    else:
        den <<= -shift
    q = num // den
    if q >= _TWO24:
        den <<= 1
        shift -= 1
        q = num // den
    num = 2 * (num - q * den)  # twice the remainder
    if num > den or (num == den and q & 1):
        q += 1
    return _pack(q, shift)


def _sqrt_ratio_bits(num, den):
    """Float32 bits of the float32 nearest to sqrt(num / den) (integers, num >= 0, den > 0), ties to even."""
    if num == 0:
        return 0
    shift = 24 - (_bit_length(num) - _bit_length(den)) // 2  # sqrt(num * 4**shift / den) near [2**23, 2**24)
    while True:
        if shift >= 0:
            q = _isqrt((num << 2 * shift) // den)  # floor(sqrt(floor(y))) == floor(sqrt(y))
        else:
            q = _isqrt(num // (den << -2 * shift))
        if q >= _TWO24:
            shift -= 1
        elif q < _TWO23:
            shift += 1
        else:
            break
    # round up when sqrt(num * 4**shift / den) > q + 1/2, i.e. 4 num 4**shift > den (2q + 1)^2; equality is a tie
    if shift >= 0:
        num = (num << (2 * shift + 2)) - den * (2 * q + 1) * (2 * q + 1)
    else:
        num = 4 * num - (den << -2 * shift) * (2 * q + 1) * (2 * q + 1)
    if num > 0 or (num == 0 and q & 1):
        q += 1
    return _pack(q, shift)


def _rounded_sqrt(x):
    """The integer nearest to sqrt(x), x >= 0 an integer (never a tie: (r + 1/2)^2 is not an integer)."""
    r = _isqrt(x)
    return r + 1 if x - r * r > r else r


def _channel(values, bits):
    """Appends the bits of one channel's features (integer samples); returns (sum, n^2 * variance) for correlations."""
    n = len(values)
    total = 0
    squares = 0
    abs_diff = 0
    previous = values[0]
    for v in values:
        total += v
        squares += v * v
        d = v - previous
        abs_diff += d if d >= 0 else -d
        previous = v
    centred_squares = n * squares - total * total  # n^2 * variance, exact
    crossings = 0
    above = values[0] * n > total
    for v in values:
        now = v * n > total
        if now != above:
            crossings += 1
            above = now
    bits.append(_ratio_bits(total, n))
    bits.append(_sqrt_ratio_bits(centred_squares, n * n))
    values.sort()
    bits.append(_ratio_bits(values[0], 1))
    bits.append(_ratio_bits(values[n - 1], 1))
    for percent in PERCENTILES:
        # linear interpolation as numpy.percentile: position percent * (n - 1) / 100, exact here
        position = percent * (n - 1)
        low = position // 100
        fraction = position - 100 * low  # in hundredths
        lower = values[low]
        upper = values[low + 1] if fraction else lower
        bits.append(_ratio_bits(100 * lower + (upper - lower) * fraction, 100))
    bits.append(_ratio_bits(squares, n))
    bits.append(_ratio_bits(crossings, 1))
    bits.append(_ratio_bits(abs_diff, n - 1) if n > 1 else 0)
    return total, centred_squares


def features(window, n_axes=3, out=None):
    """Features of one window: `window` holds n samples of n_axes integers, interleaved.

    Returns a list of floats (each exactly a float32) in feature_names() order, or fills `out`,
    an array('f') of n_features(n_axes) places, with their float32 bits and returns it.
    Raises ValueError for a window that is not whole rows or an `out` of the wrong size, TypeError
    for an `out` of another typecode (on CPython; MicroPython arrays do not tell their typecode).
    """
    size = len(window)
    if size < n_axes or size % n_axes:
        raise ValueError("window of %d values is not a whole number (>= 1) of rows of %d axes" % (size, n_axes))
    if out is not None and len(out) != n_features(n_axes):
        raise ValueError("out has %d places, features need %d" % (len(out), n_features(n_axes)))
    if out is not None and getattr(out, "typecode", "f") != "f":
        raise TypeError("out must be array('f'), got typecode '%s'" % out.typecode)
    n = size // n_axes
    axes = [[0] * n for _ in range(n_axes)]
    magnitude = [0] * n
    i = 0
    for row in range(n):
        squares = 0
        for a in range(n_axes):
            v = window[i]
            axes[a][row] = v
            squares += v * v
            i += 1
        r = int(math.sqrt(squares))  # a guess of floor(sqrt), checked exactly below
        d = squares - r * r
        if d > r:
            r += 1
            d -= r + r - 1
        if not -r < d <= r:  # r is the nearest integer iff (r - 1/2)^2 < squares < (r + 1/2)^2
            r = _rounded_sqrt(squares)
        magnitude[row] = r
    # cross products before _channel sorts the axis lists
    products = []
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            xa = axes[a]
            xb = axes[b]
            s = 0
            for row in range(n):
                s += xa[row] * xb[row]
            products.append(s)
    bits = []
    moments = [_channel(axes[a], bits) for a in range(n_axes)]
    _channel(magnitude, bits)
    k = 0
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            total_a, centred_a = moments[a]
            total_b, centred_b = moments[b]
            cross = n * products[k] - total_a * total_b  # n^2 * covariance, exact
            spread = centred_a * centred_b
            # corr = cross / sqrt(spread) = sign(cross) * sqrt(cross^2 / spread); 0 for a constant axis
            if spread > 0:
                bits.append(_sqrt_ratio_bits(cross * cross, spread) | (0x80000000 if cross < 0 else 0))
            else:
                bits.append(0)
            k += 1
    if out is None:
        values = array.array("f", [0.0] * len(bits))
        _store(bits, values)
        return list(values)
    _store(bits, out)
    return out


def _store(bits, out):
    for j in range(len(bits)):
        struct.pack_into("I", out, 4 * j, bits[j])


class Windower:
    """Cuts a stream of interleaved samples into windows of `window` rows, every `hop` rows.

    push(values) yields the internal buffer (an array of window * n_axes values) once per
    complete window; it is overwritten afterwards, so use it before the next iteration.
    Windows start at rows 0, hop, 2*hop, ... of the stream, whatever the chunk sizes.
    """

    def __init__(self, window, hop, n_axes=3, typecode="h"):
        if window < 1 or hop < 1 or hop > window:
            raise ValueError("need 1 <= hop <= window, got window %d, hop %d" % (window, hop))
        self.size = window * n_axes
        self.step = hop * n_axes
        self.buffer = array.array(typecode, [0] * self.size)
        self.fill = 0

    def push(self, values):
        buffer = self.buffer
        size = self.size
        i = 0
        n = len(values)
        while i < n:
            fill = self.fill
            take = min(size - fill, n - i)
            for j in range(take):
                buffer[fill + j] = values[i + j]
            i += take
            self.fill = fill + take
            if self.fill == size:
                yield buffer
                step = self.step
                for j in range(size - step):
                    buffer[j] = buffer[j + step]
                self.fill = size - step

    def reset(self):
        self.fill = 0


def windows(values, window, hop, n_axes=3):
    """Features of every window of a whole recording (interleaved values): a list of feature lists."""
    windower = Windower(window, hop, n_axes)
    return [features(w, n_axes) for w in windower.push(values)]
