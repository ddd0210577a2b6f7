"""numpy mirror of emlfft's float32 arithmetic (natmods/common/mpyml_fft.h, mpyml_math.h).

Every function repeats the C core's operations in the same order in float32, so
on a target without fused multiply-add (x64, the unix port) the device's
results equal these bit for bit; tests compare both with numpy.fft in float64
for accuracy, and with each other for exactness.
"""

from __future__ import annotations

import numpy as np

MIN_LOG2, MAX_LOG2 = 3, 12
F32 = np.float32

_SIN = [F32(-1.6666667163e-01), F32(8.3333337680e-03), F32(-1.9841270114e-04), F32(2.7557319224e-06)]
_COS = [F32(-0.5), F32(4.1666667908e-02), F32(-1.3888889225e-03), F32(2.4801587642e-05), F32(-2.7557319224e-07)]
_TWO_PI_HI, _TWO_PI_LO = F32(6.2831854820e+00), F32(-1.7484555314e-07)


def check_size(n: int) -> int:
    """log2(n) for the sizes emlfft.FFT accepts (powers of two 8..4096); ValueError otherwise."""
    for k in range(MIN_LOG2, MAX_LOG2 + 1):
        if n == 1 << k:
            return k
    raise ValueError("FFT size must be a power of two from %d to %d, got %r" % (1 << MIN_LOG2, 1 << MAX_LOG2, n))


def ram_bytes(n: int) -> int:
    """Bytes of the block emlfft.FFT(n) allocates (twiddles and scratch), besides the object itself."""
    check_size(n)
    return 2 * n * 4


def _poly(x2: np.ndarray, coefficients) -> np.ndarray:
    acc = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = c + x2 * acc
    return acc


def sin_kernel(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    return x + x * x2 * _poly(x2, _SIN)


def cos_kernel(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    return F32(1.0) + x2 * _poly(x2, _COS)


def _by_quadrant(quadrant: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sr, cr = sin_kernel(r), cos_kernel(r)
    q = quadrant & 3
    s = np.select([q == 0, q == 1, q == 2], [sr, cr, -sr], -cr).astype(F32)
    c = np.select([q == 0, q == 1, q == 2], [cr, -sr, -cr], sr).astype(F32)
    return s, c


def sincos_turn(k, log2n: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (sin, cos) of 2*pi*k / 2**log2n as mpyml_sincos_turn computes them."""
    k = np.asarray(k, dtype=np.int64) & 0xFFFFFFFF
    quarter_shift = log2n - 2
    quarter = 1 << quarter_shift
    quadrant = k >> quarter_shift
    steps = k & (quarter - 1)
    past = steps > (quarter >> 1)
    steps = np.where(past, steps - quarter, steps)
    quadrant = quadrant + past
    scale = F32(2.0 ** -log2n)
    stepsf = steps.astype(F32)
    with np.errstate(over="ignore"):
        r = stepsf * (_TWO_PI_HI * scale) + stepsf * (_TWO_PI_LO * scale)
    return _by_quadrant(quadrant, r.astype(F32))


def twiddles(n: int) -> np.ndarray:
    """The core's twiddle table: (n/2, 2) float32 of (cos, sin) of 2*pi*k/n."""
    s, c = sincos_turn(np.arange(n // 2), check_size(n))
    return np.stack([c, s], axis=1)


def sqrt(x) -> np.ndarray:
    """mpyml_sqrtf on float32 values."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(all="ignore"):
        tiny = x < F32(1.0e-30)
        xs = np.where(tiny, x * F32(1.8446744074e+19), x).astype(F32)
        unscale = np.where(tiny, F32(2.3283064365e-10), F32(1.0)).astype(F32)
        bits = xs.view(np.uint32)
        y = (np.uint32(0x5F375A86) - (bits >> np.uint32(1))).astype(np.uint32).view(F32)
        half = F32(0.5) * xs
        for _ in range(3):
            y = y * (F32(1.5) - half * y * y)
        root = xs * y
        root = root + F32(0.5) * y * (xs - root * root)
        out = (root * unscale).astype(F32)
    out = np.where(np.isfinite(x), out, x)
    out = np.where(x == 0, F32(0.0), out)
    return np.where((x < 0) | np.isnan(x), F32(np.nan), out).astype(F32)


def _complex(table: np.ndarray, log2n: int, re: np.ndarray, im: np.ndarray, log2m: int):
    m = 1 << log2m
    rev = np.zeros(m, dtype=np.int64)
    for bit in range(log2m):
        rev |= ((np.arange(m) >> bit) & 1) << (log2m - 1 - bit)
    re, im = re[rev].copy(), im[rev].copy()
    q_re, q_im = re.reshape(-1, 4), im.reshape(-1, 4)
    ar, ai = q_re[:, 0] + q_re[:, 1], q_im[:, 0] + q_im[:, 1]
    br, bi = q_re[:, 0] - q_re[:, 1], q_im[:, 0] - q_im[:, 1]
    cr, ci = q_re[:, 2] + q_re[:, 3], q_im[:, 2] + q_im[:, 3]
    dr, di = q_re[:, 2] - q_re[:, 3], q_im[:, 2] - q_im[:, 3]
    re = np.stack([ar + cr, br + di, ar - cr, br - di], axis=1).reshape(-1)
    im = np.stack([ai + ci, bi - dr, ai - ci, bi + dr], axis=1).reshape(-1)
    for log2len in range(3, log2m + 1):
        half = 1 << (log2len - 1)
        w = table[np.arange(half) << (log2n - log2len)]
        c, s = w[:, 0], w[:, 1]
        g_re, g_im = re.reshape(-1, 2, half), im.reshape(-1, 2, half)
        a_re, a_im, b_re, b_im = g_re[:, 0], g_im[:, 0], g_re[:, 1], g_im[:, 1]
        tr = b_re * c + b_im * s
        ti = b_im * c - b_re * s
        re = np.stack([a_re + tr, a_re - tr], axis=1).reshape(-1)
        im = np.stack([a_im + ti, a_im - ti], axis=1).reshape(-1)
    return re.astype(F32), im.astype(F32)


def forward(re, im) -> tuple[np.ndarray, np.ndarray]:
    """emlfft FFT.run: the forward transform in float32 (numpy.fft.fft's sign and scaling)."""
    re, im = np.asarray(re, dtype=F32), np.asarray(im, dtype=F32)
    log2n = check_size(len(re))
    with np.errstate(all="ignore"):
        return _complex(twiddles(len(re)), log2n, re, im, log2n)


def inverse(re, im) -> tuple[np.ndarray, np.ndarray]:
    """emlfft FFT.inverse: numpy.fft.ifft in float32 (scaled by 1/n)."""
    re, im = np.asarray(re, dtype=F32), np.asarray(im, dtype=F32)
    log2n = check_size(len(re))
    scale = F32(2.0 ** -log2n)
    with np.errstate(all="ignore"):
        out_im, out_re = _complex(twiddles(len(re)), log2n, im, re, log2n)
        return (out_re * scale).astype(F32), (out_im * scale).astype(F32)


def real_spectrum(x, power: bool) -> np.ndarray:
    """emlfft FFT.power (power=True) / FFT.magnitude: |numpy.fft.rfft(x)|**2 or |rfft(x)|, n/2+1 float32 values."""
    x = np.asarray(x, dtype=F32)
    n = len(x)
    log2n = check_size(n)
    half = n // 2
    table = twiddles(n)
    with np.errstate(all="ignore"):
        re, im = _complex(table, log2n, x[0::2].copy(), x[1::2].copy(), log2n - 1)

        def value(vr, vi):
            p = vr * vr + vi * vi
            return p if power else sqrt(p)

        out = np.zeros(half + 1, dtype=F32)
        out[0] = value(re[:1] + im[:1], np.zeros(1, F32))[0]
        out[half] = value(re[:1] - im[:1], np.zeros(1, F32))[0]
        k = np.arange(1, half // 2 + 1)
        zr, zi, yr, yi = re[k], im[k], re[half - k], im[half - k]
        er, ei = F32(0.5) * (zr + yr), F32(0.5) * (zi - yi)
        o_r, oi = F32(0.5) * (zi + yi), F32(-0.5) * (zr - yr)
        c, s = table[k, 0], table[k, 1]
        tr, ti = o_r * c + oi * s, oi * c - o_r * s
        out[k] = value(er + tr, ei + ti)
        out[half - k] = value(er - tr, ei - ti)
    return out
