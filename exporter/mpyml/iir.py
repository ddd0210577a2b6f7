"""IIR filters for emliir: scipy second-order sections on the device, float32 or Q15.

The intermediate representation is scipy's ``sos`` array itself: one row
``b0 b1 b2 a0 a1 a2`` per second-order section, as ``scipy.signal.butter(...,
output='sos')`` and friends return it. From it this module makes

- the float32 coefficients the device runs (``float32_sos``) and a numpy mirror
  of the device's float32 direct-form-II-transposed arithmetic (``sosfilt_float32``),
- Q15 coefficients for MCUs without an FPU (``quantize_q15``), the numpy mirror
  of the device's integer arithmetic (``sosfilt_q15``) and a rigorous bound on
  its error against the exact filter (``q15_error_bound``),
- the coefficients file the device loads with ``emliir.load`` (``save`` /
  ``load``, format ``mpyml-iir`` in docs/formats.md).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import FormatError
from .formats.records import Records, seal

FORMAT = "mpyml-iir"
FORMAT_VERSION = 2
MAX_STAGES = 65535
Q15_MAX_FRAC = 14
Q15_MAX_COEFF_SUM = 65535  # keeps the device's int32 accumulator from overflowing
Q15_FREQS = 8192  # frequency grid of the per-stage scaling


class Q15Warning(UserWarning):
    """The filter cannot be represented well (or stably) in Q15."""


def check_sos(sos) -> np.ndarray:
    """scipy's sos as a float64 array of shape (n_stages, 6); raises ValueError for anything else."""
    arr = np.asarray(sos, dtype=np.float64)
    if arr.ndim == 1:
        if arr.size == 0 or arr.size % 6:
            raise ValueError("sos: expected a multiple of 6 numbers (b0, b1, b2, a0, a1, a2 per stage), got %d" % arr.size)
        arr = arr.reshape(-1, 6)
    if arr.ndim != 2 or arr.shape[1] != 6 or arr.shape[0] == 0:
        raise ValueError("sos: expected shape (n_stages, 6), got %s" % (arr.shape,))
    if arr.shape[0] > MAX_STAGES:
        raise ValueError("sos: at most %d stages, got %d" % (MAX_STAGES, arr.shape[0]))
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
    if len(bad):
        raise ValueError("sos stage %d: coefficient is NaN or infinite: %s" % (bad[0], arr[bad[0]].tolist()))
    bad = np.flatnonzero(arr[:, 3] != 1.0)
    if len(bad):
        raise ValueError("sos stage %d: a0 must be 1 (scipy's sos is normalized), got %r" % (bad[0], arr[bad[0], 3]))
    return arr


def float32_sos(sos) -> np.ndarray:
    """The float32 coefficients the device runs, shape (n_stages, 6)."""
    return check_sos(sos).astype(np.float32)


# ---------------------------------------------------------------- float32 path


def sosfilt_float32(sos, x, state=None):
    """Numpy mirror of emliir's float32 path: returns (y, state).

    Direct form II transposed in float32, in scipy.signal.sosfilt's operation
    order (so it equals sosfilt on float32 sos and input bit for bit). `state`
    (float32, shape (n_stages, 2)) continues a previous call; None starts at zero.
    """
    c = float32_sos(sos)
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    z = np.zeros((len(c), 2), dtype=np.float32) if state is None else np.array(state, dtype=np.float32)
    y = x.copy()
    for s, (b0, b1, b2, _, a1, a2) in enumerate(c):
        z1, z2 = z[s]
        out = np.empty_like(y)
        for i, v in enumerate(y):
            r = b0 * v + z1
            z1 = b1 * v - a1 * r + z2
            z2 = b2 * v - a2 * r
            out[i] = r
        z[s] = z1, z2
        y = out
    return y, z


# ---------------------------------------------------------------- Q15 path


def _stage_scales(sos: np.ndarray) -> np.ndarray:
    """Numerator factors that give every stage's output a peak gain of 1 from the input (sinusoids
    reach int16 full scale at most once they reach it at the input); the last stage restores the
    filter's own gain, so the cascade stays the same filter."""
    from scipy.signal import sosfreqz

    n = len(sos)
    scales = np.ones(n)
    cumulative = np.ones(Q15_FREQS, dtype=complex)
    previous = 1.0
    for k in range(n - 1):
        cumulative = cumulative * sosfreqz(sos[k:k + 1], worN=Q15_FREQS)[1]
        peak = np.abs(cumulative).max()
        gain = 1.0 / peak if peak > 0 else 1.0
        scales[k] = gain / previous
        previous = gain
    scales[n - 1] = 1.0 / previous
    return scales


def _quantize_stage(coeffs: np.ndarray, stage: int) -> tuple[int, np.ndarray]:
    """(frac, integers b0 b1 b2 a1 a2): the most fraction bits that fit int16 and the accumulator bound."""
    for frac in range(Q15_MAX_FRAC, -1, -1):
        q = np.round(coeffs * 2.0**frac)
        if np.all(q >= -32768) and np.all(q <= 32767) and np.abs(q).sum() <= Q15_MAX_COEFF_SUM:
            return frac, q.astype(np.int64)
    raise ValueError("sos stage %d: coefficients %s are too large for Q15 even without fraction bits"
                     % (stage, coeffs.tolist()))


def quantize_q15(sos, scale: bool = True) -> np.ndarray:
    """Q15 coefficients for emliir.new_q15: int16 array of shape (n_stages, 6).

    Each row is b0 b1 b2 a0 a1 a2 times 2**frac, rounded, with a0 = 2**frac: frac
    (0..14) is the largest that keeps every number in int16 and |b0|+|b1|+|b2|+|a1|+|a2|
    <= 65535 (the device's int32 accumulator then cannot overflow). With `scale`, the
    numerators are first rescaled per stage so that each stage's output has a peak
    gain of at most 1 (the overall filter is unchanged). Warns (Q15Warning) when a
    quantized stage is unstable or the quantized filter's frequency response is more
    than 1% of its peak away from the exact one.
    """
    sos = check_sos(sos)
    scaled = sos.copy()
    if scale:
        scaled[:, :3] *= _stage_scales(sos)[:, None]
    rows, stable = [], True
    for k, stage in enumerate(scaled):
        frac, q = _quantize_stage(stage[[0, 1, 2, 4, 5]], k)
        rows.append([q[0], q[1], q[2], 1 << frac, q[3], q[4]])
        a1, a2 = q[3] / 2.0**frac, q[4] / 2.0**frac
        if not (abs(a2) < 1 and abs(a1) < 1 + a2):
            stable = False
            warnings.warn("stage %d: quantized to Q15 (a1=%g, a2=%g, %d fraction bits) its poles are on or outside "
                          "the unit circle: the Q15 filter is unstable; use the float32 path (or a wider band, "
                          "a lower order)" % (k, a1, a2, frac), Q15Warning, stacklevel=2)
    q15 = np.array(rows, dtype=np.int16)
    deviation = _response_deviation(sos, q15) if stable else 0.0
    if deviation > 0.01:
        warnings.warn("the Q15 filter's frequency response differs from the exact one by up to %.1f%% of its peak "
                      "(coefficient rounding; poles too close to the unit circle for Q15): use the float32 path"
                      % (100 * deviation), Q15Warning, stacklevel=2)
    return q15


def q15_real(q15) -> np.ndarray:
    """The filter a Q15 sos represents exactly, as a float64 sos (a0 = 1)."""
    q = np.asarray(q15, dtype=np.float64).reshape(-1, 6)
    return q / q[:, 3:4]


def _response_deviation(sos: np.ndarray, q15: np.ndarray) -> float:
    from scipy.signal import sosfreqz

    exact = sosfreqz(sos, worN=Q15_FREQS)[1]
    quantized = sosfreqz(q15_real(q15), worN=Q15_FREQS)[1]
    return float(np.abs(quantized - exact).max() / max(np.abs(exact).max(), 1e-300))


def check_q15(q15) -> np.ndarray:
    """A Q15 sos as an int64 array of shape (n_stages, 6), validated as the device does."""
    arr = np.asarray(q15)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 6) if arr.size and arr.size % 6 == 0 else arr
    if arr.ndim != 2 or arr.shape[1] != 6 or arr.shape[0] == 0 or arr.shape[0] > MAX_STAGES:
        raise ValueError("q15 sos: expected shape (n_stages, 6) with 1..%d stages, got %s" % (MAX_STAGES, arr.shape))
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < -32768 or arr.max() > 32767:
        raise ValueError("q15 sos: expected int16 integers")
    arr = arr.astype(np.int64)
    for k, row in enumerate(arr):
        if row[3] not in [1 << f for f in range(Q15_MAX_FRAC + 1)]:
            raise ValueError("q15 sos stage %d: a0 must be 2**frac with frac 0..14, got %d" % (k, row[3]))
        if np.abs(row[[0, 1, 2, 4, 5]]).sum() > Q15_MAX_COEFF_SUM:
            raise ValueError("q15 sos stage %d: |b0|+|b1|+|b2|+|a1|+|a2| above %d" % (k, Q15_MAX_COEFF_SUM))
    return arr


def sosfilt_q15(q15, x, state=None, return_saturations: bool = False):
    """Numpy mirror of emliir's Q15 path: returns (y, state) (and the number of saturated samples).

    Direct form I per stage: acc = 2**(frac-1) + b0*x[n] + b1*x[n-1] + b2*x[n-2] - a1*y[n-1] - a2*y[n-2],
    y[n] = floor(acc / 2**frac) saturated to int16. `x` is int16; `state` (int64, shape
    (n_stages, 4): x[n-1], x[n-2], y[n-1], y[n-2] per stage) continues a previous call.
    """
    q = check_q15(q15)
    x = np.asarray(x)
    if x.size and (x.min() < -32768 or x.max() > 32767):
        raise ValueError("x: expected int16 values")
    st = np.zeros((len(q), 4), dtype=np.int64) if state is None else np.array(state, dtype=np.int64)
    values = [int(v) for v in x.reshape(-1)]
    saturated = 0
    for s, (b0, b1, b2, a0, a1, a2) in enumerate(q.tolist()):
        frac = a0.bit_length() - 1
        half = a0 >> 1
        x1, x2, y1, y2 = (int(v) for v in st[s])
        for i, v in enumerate(values):
            y = (half + b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) >> frac
            if y > 32767 or y < -32768:
                saturated += 1
                y = 32767 if y > 0 else -32768
            x2, x1, y2, y1 = x1, v, y1, y
            values[i] = y
        st[s] = x1, x2, y1, y2
    y = np.array(values, dtype=np.int16)
    return (y, st, saturated) if return_saturations else (y, st)


def q15_error_bound(sos, q15, peak: float = 32768, n_samples: int = 10000) -> float:
    """Largest |Q15 output - exact output| (in int16 units) over the first n_samples of any input with
    |x| <= peak, when no stage saturates: peak * ||h - h_q||_1 (coefficient rounding) plus, for each
    stage, 1/2 * ||g_k||_1 (its output rounding, fed back through its own poles and on through the
    stages after it). h, h_q, g_k are impulse responses over n_samples; the exact filter is `sos`."""
    from scipy.signal import sosfilt

    sos = check_sos(sos)
    real = q15_real(check_q15(q15))
    impulse = np.zeros(n_samples)
    impulse[0] = 1.0
    bound = peak * np.abs(sosfilt(sos, impulse) - sosfilt(real, impulse)).sum()
    for k in range(len(real)):
        poles_only = np.array([[1.0, 0.0, 0.0, 1.0, real[k, 4], real[k, 5]]])
        bound += 0.5 * np.abs(sosfilt(np.vstack([poles_only, real[k + 1:]]), impulse)).sum()
    return float(bound)


# ---------------------------------------------------------------- the coefficients file


def _is_q15(coeffs) -> bool:
    return np.issubdtype(np.asarray(coeffs).dtype, np.integer)


def dumps(coeffs) -> str:
    """The file's text for a float sos (stored as float32) or a Q15 sos (from quantize_q15)."""
    q15 = _is_q15(coeffs)
    rows = check_q15(coeffs) if q15 else float32_sos(coeffs)
    lines = ["%s,%d" % (FORMAT, FORMAT_VERSION), "dtype,%s" % ("int16" if q15 else "float32"),
             "n_stages,%d" % len(rows), "stages"]
    for row in rows:
        if q15:
            lines.append(",".join(str(int(v)) for v in row))
        else:
            lines.append("# " + " ".join("%.9g" % v for v in row))
            lines.append(",".join("%08x" % b for b in row.view(np.uint32)))
    return seal("\n".join(lines) + "\n")


def write(coeffs, f) -> None:
    """Writes :func:`dumps` of the coefficients to an open text file."""
    f.write(dumps(coeffs))


def save(coeffs, path) -> None:
    """Writes the coefficients file emliir.load(path) reads on the device."""
    with open(path, "w", newline="\n") as f:
        write(coeffs, f)


def loads(data) -> np.ndarray:
    """The coefficients of a file's text or bytes: float32 (n_stages, 6) or int16 (n_stages, 6) for Q15.
    Raises ValueError("filter file line N: ...") for a file the device would refuse."""
    try:
        return _read(Records(data))
    except FormatError as e:
        raise ValueError("filter file %s" % e) from None


def _read(found: Records) -> np.ndarray:
    version = found.value(FORMAT)
    if version == "1":
        raise found.error("version 1 is no longer read by this mpyml (it reads version %d): export the filter again"
                          % FORMAT_VERSION)
    if version != str(FORMAT_VERSION):
        raise found.error("format version %s is not supported (version %d)" % (version[:10], FORMAT_VERSION))
    dtype = found.value("dtype", ("float32", "int16"))
    n_stages = found.count("n_stages", 1, MAX_STAGES)
    found.section("stages")
    rows = []
    for _ in range(n_stages):
        fields = found.fields(6, "a stage")
        rows.append([found.hex32(v) if dtype == "float32" else found.int(v, -32768, 32767, "a Q15 coefficient")
                     for v in fields])
    found.end("stage")
    if dtype == "float32":
        coeffs = np.array(rows, dtype=np.uint32).view(np.float32)
        float32_sos(coeffs)
        return coeffs
    return check_q15(np.array(rows)).astype(np.int16)


def load(path) -> np.ndarray:
    with open(os.fspath(path), "rb") as f:
        return loads(f.read())
