"""Windowing and time-domain features of accelerometer data, for MicroPython and CPython alike.

One module runs on the PC for training and on the device for prediction, so the model
sees the same numbers in both places. Samples are integers (e.g. int16 readings) stored
interleaved, one row of `n_axes` values per sample, as `.npy` files of shape (n, axes) hold them.

    windower = Windower(window=100, hop=50, n_axes=3)
    for chunk in reader.read_data_chunks(150):
        for window in windower.push(chunk):
            values = features(window, 3)          # list of floats, feature_names(3) order

Exactness: sums over the raw axes are integer sums (exact on every port); floats appear
only in a few final divisions, square roots and percentile interpolations, done in the same
order on every interpreter. With double floats (CPython, the unix port) features agree to
the last bit; a float32 port rounds those final steps (and the magnitude channel, which is
a float per sample) to float32, so its features differ by about 1e-7 relative.
"""

import array
import math

PERCENTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
_CHANNEL_FEATURES = ("mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90",
                     "energy", "mean_crossings", "mean_abs_diff")


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


def _order_statistics(values, out):
    """Min, max and PERCENTILES (linear interpolation, as numpy.percentile) of a list; sorts it in place."""
    values.sort()
    n = len(values)
    out.append(values[0])
    out.append(values[n - 1])
    for q in PERCENTILES:
        position = q * (n - 1)
        low = int(position)
        if low >= n - 1:
            out.append(float(values[n - 1]))
        else:
            lower = values[low]
            out.append(lower + (values[low + 1] - lower) * (position - low))


def _integer_channel(values, out):
    """Features of one axis of integer samples; returns (n * sum, n * sum of squares - sum^2) for correlations."""
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
    out.append(total / n)
    out.append(math.sqrt(centred_squares) / n)
    _order_statistics(values, out)
    out.append(squares / n)
    out.append(float(crossings))
    out.append(abs_diff / (n - 1) if n > 1 else 0.0)
    return centred_squares


def _float_channel(values, out):
    n = len(values)
    total = 0.0
    squares = 0.0
    abs_diff = 0.0
    previous = values[0]
    for v in values:
        total += v
        squares += v * v
        abs_diff += abs(v - previous)
        previous = v
    mean = total / n
    variance = 0.0
    for v in values:
        d = v - mean
        variance += d * d
    crossings = 0
    above = values[0] > mean
    for v in values:
        now = v > mean
        if now != above:
            crossings += 1
            above = now
    out.append(mean)
    out.append(math.sqrt(variance / n))
    _order_statistics(values, out)
    out.append(squares / n)
    out.append(float(crossings))
    out.append(abs_diff / (n - 1) if n > 1 else 0.0)


def features(window, n_axes=3, out=None):
    """Features of one window: `window` holds n samples of n_axes integers, interleaved.

    Returns a list of floats in feature_names() order, or fills `out` (e.g. array('f')) and returns it.
    """
    size = len(window)
    if size < n_axes or size % n_axes:
        raise ValueError("window of %d values is not a whole number (>= 1) of rows of %d axes" % (size, n_axes))
    n = size // n_axes
    axes = [[0] * n for _ in range(n_axes)]
    magnitude = [0.0] * n
    i = 0
    for row in range(n):
        squares = 0
        for a in range(n_axes):
            v = window[i]
            axes[a][row] = v
            squares += v * v
            i += 1
        magnitude[row] = math.sqrt(squares)
    # cross sums before the order statistics sort the axis lists
    cross = []
    sums = []
    for a in range(n_axes):
        total = 0
        for v in axes[a]:
            total += v
        sums.append(total)
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            xa = axes[a]
            xb = axes[b]
            s = 0
            for row in range(n):
                s += xa[row] * xb[row]
            cross.append(n * s - sums[a] * sums[b])
    values = []
    centred = []
    for a in range(n_axes):
        centred.append(_integer_channel(axes[a], values))
    _float_channel(magnitude, values)
    k = 0
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            denominator = math.sqrt(centred[a]) * math.sqrt(centred[b])
            values.append(cross[k] / denominator if denominator > 0 else 0.0)
            k += 1
    if out is None:
        return values
    if len(out) != len(values):
        raise ValueError("out has %d places, features need %d" % (len(out), len(values)))
    for j in range(len(values)):
        out[j] = values[j]
    return out


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
