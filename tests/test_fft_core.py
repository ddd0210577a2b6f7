"""The portable FFT core (natmods/common/mpyml_fft.h) and the float helpers of
mpyml_math.h, built for the host under ASan and UBSan (tests/c/fft_driver.c).

Checks: parity with numpy.fft at every supported size for random, sine and
impulse inputs (the issue's bound, max abs error <= 1e-5 * n * max|x|, and a
tighter bound relative to the spectrum's peak); bit-exact agreement with the
numpy mirror in mpyml.fft; sin/cos/sqrt against numpy over their whole range;
size validation; NaN and inf inputs run without any sanitizer report.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from c_errors import error_codes
from mpyml import fft as mirror

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER_SOURCE = ROOT / "tests" / "c" / "fft_driver.c"
# -Wdouble-promotion / -Wfloat-conversion: the core computes in float32 only, as on an MCU's single-precision FPU.
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(COMMON)]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
SIZES = [1 << k for k in range(3, 13)]
PARITY = 1e-5  # the bound, relative to n * max|x|
SEED = 4242


def _error_code(name: str) -> int:
    return error_codes()[name]


@pytest.fixture(scope="session", params=["O0", "O3"])
def driver(request, tmp_path_factory) -> Path:
    """The driver without optimisation, and with -O3 as the natmod is built (vectorized loops)."""
    exe = tmp_path_factory.mktemp("fft_core_" + request.param) / "fft_driver"
    proc = subprocess.run(["gcc", *CFLAGS, "-" + request.param, "-o", str(exe), str(DRIVER_SOURCE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, "gcc failed:\n" + proc.stdout + proc.stderr
    return exe


def run(exe: Path, lines: list[str]) -> list[str]:
    env = dict(os.environ, **SANITIZER_ENV)
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=120, env=env)
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-4000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert len(out) == len(lines)
    return out


def hexes(values) -> str:
    return " ".join("%08x" % b for b in np.asarray(values, dtype=np.float32).reshape(-1).view(np.uint32))


def floats(line: str) -> np.ndarray:
    return np.array([int(t, 16) for t in line.split()], dtype=np.uint32).view(np.float32)


def signals(n: int, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(real, imag) float32 inputs: random complex, sines (real), impulses."""
    t = np.arange(n)
    sine = 3.0 * np.sin(2 * np.pi * 5 * t / n + 0.3) + 0.5 * np.sin(2 * np.pi * (n // 3 + 0.37) * t / n)
    impulse = np.zeros(n)
    impulse[n // 3] = 2.5
    shifted = np.zeros(n)
    shifted[0] = -1.0
    shifted[n - 1] = 1e-3
    return {
        "random": (rng.uniform(-1, 1, n), rng.normal(size=n)),
        "random_large": (rng.uniform(-1e4, 1e4, n), np.zeros(n)),
        "sine": (sine, np.zeros(n)),
        "impulse": (impulse, np.zeros(n)),
        "impulse_complex": (shifted, impulse),
    }


def cases(rng):
    for n in SIZES:
        for name, (x, y) in signals(n, rng).items():
            yield n, name, x.astype(np.float32), y.astype(np.float32)


def test_parity_with_numpy_and_mirror(driver):
    rng = np.random.default_rng(SEED)
    lines, expected = [], []
    for n, name, x, y in cases(rng):
        lines += ["forward %d %s %s" % (n, hexes(x), hexes(y)), "inverse %d %s %s" % (n, hexes(x), hexes(y)),
                  "magnitude %d %s" % (n, hexes(x)), "power %d %s" % (n, hexes(x))]
        expected.append((n, name, x, y))
    out = run(driver, lines)
    for i, (n, name, x, y) in enumerate(expected):
        fwd, inv, mag, power = (floats(line) for line in out[4 * i:4 * i + 4])
        z = x.astype(np.float64) + 1j * y.astype(np.float64)
        want = np.fft.fft(z)
        got = fwd[:n].astype(np.float64) + 1j * fwd[n:]
        peak = np.max(np.abs(z))
        err = np.max(np.abs(got - want))
        assert err <= PARITY * n * peak, (n, name, err / (n * peak))
        assert err <= 1e-6 * np.max(np.abs(want)), (n, name, "forward", err / np.max(np.abs(want)))
        got_inv = inv[:n].astype(np.float64) + 1j * inv[n:]
        want_inv = np.fft.ifft(z)
        assert np.max(np.abs(got_inv - want_inv)) <= 1e-6 * np.max(np.abs(want_inv)), (n, name, "inverse")
        spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
        real_peak = np.max(np.abs(x))
        assert mag.shape == power.shape == (n // 2 + 1,)
        assert np.max(np.abs(mag - spectrum)) <= PARITY * n * real_peak, (n, name, "magnitude")
        assert np.max(np.abs(mag - spectrum)) <= 1e-6 * np.max(spectrum), (n, name, "magnitude")
        assert np.max(np.abs(power - spectrum ** 2)) <= 2e-6 * np.max(spectrum) ** 2, (n, name, "power")
        # bit for bit what the numpy mirror computes (the host has no fused multiply-add)
        assert np.array_equal(fwd.view(np.uint32), np.concatenate(mirror.forward(x, y)).view(np.uint32)), (n, name)
        assert np.array_equal(inv.view(np.uint32), np.concatenate(mirror.inverse(x, y)).view(np.uint32)), (n, name)
        assert np.array_equal(mag.view(np.uint32), mirror.real_spectrum(x, False).view(np.uint32)), (n, name)
        assert np.array_equal(power.view(np.uint32), mirror.real_spectrum(x, True).view(np.uint32)), (n, name)


def test_inverse_undoes_forward(driver):
    """The inverse of the forward transform gives the input back to a few float32 ulps."""
    rng = np.random.default_rng(SEED + 1)
    lines, inputs = [], []
    for n in SIZES:
        x, y = rng.normal(size=n).astype(np.float32), rng.normal(size=n).astype(np.float32)
        lines.append("forward %d %s %s" % (n, hexes(x), hexes(y)))
        inputs.append((n, x, y))
    forwards = run(driver, lines)
    back = run(driver, ["inverse %d %s" % (n, hexes(floats(line))) for (n, _, _), line in zip(inputs, forwards)])
    for (n, x, y), line in zip(inputs, back):
        v = floats(line)
        assert np.max(np.abs(v[:n] - x)) <= 2e-6 * np.max(np.abs(x)) and np.max(np.abs(v[n:] - y)) <= 2e-6 * np.max(np.abs(y))


def test_twiddles(driver):
    out = run(driver, ["twiddle %d" % n for n in SIZES])
    for n, line in zip(SIZES, out):
        table = floats(line).reshape(-1, 2).astype(np.float64)
        angle = 2 * np.pi * np.arange(n // 2) / n
        assert np.max(np.abs(table[:, 0] - np.cos(angle))) <= 9e-8, n
        assert np.max(np.abs(table[:, 1] - np.sin(angle))) <= 9e-8, n
        assert np.array_equal(floats(line).view(np.uint32), mirror.twiddles(n).reshape(-1).view(np.uint32))


def test_sincos_turn_every_angle(driver):
    """sin/cos(2*pi*k / 2**log2n) for every k of a full turn and beyond, log2n 2..12, and some to 24."""
    lines, want = [], []
    for log2n in range(2, 13):
        k = np.arange(2 << log2n)
        lines += ["turn %d %d" % (int(i), log2n) for i in k]
        want += [(log2n, k)]
    for log2n in (16, 20, 24):
        k = np.r_[np.arange(0, 1 << log2n, 4099), (1 << log2n) - 1, 0xFFFFFFFF]
        lines += ["turn %d %d" % (int(i), log2n) for i in k]
        want += [(log2n, k)]
    out = run(driver, lines)
    pos = 0
    for log2n, k in want:
        got = np.array([floats(line) for line in out[pos:pos + len(k)]], dtype=np.float64)
        pos += len(k)
        angle = 2 * np.pi * (k % (1 << log2n)) / (1 << log2n)
        assert np.max(np.abs(got[:, 0] - np.sin(angle))) <= 9e-8, log2n
        assert np.max(np.abs(got[:, 1] - np.cos(angle))) <= 9e-8, log2n
        s, c = mirror.sincos_turn(k, log2n)
        assert np.array_equal(got.astype(np.float32), np.stack([s, c], axis=1)), log2n


def test_sincosf_whole_range(driver):
    """mpyml_sincosf within 1.5 float32 ulps of 1 in absolute terms for |x| <= 6400, within 2 ulps of
    the result for |x| <= pi/4 (no reduction there); NaN beyond 6400."""
    rng = np.random.default_rng(SEED + 2)
    x = np.concatenate([rng.uniform(-6400, 6400, 6000), rng.uniform(-8, 8, 3000),
                        np.arange(-4074, 4075) * (np.pi / 2), np.arange(-64, 65) * (np.pi / 4),
                        rng.uniform(-1e-3, 1e-3, 300), [0.0, -0.0, 1e-30, -1e-38, 1e-45, 6400.0, -6400.0]])
    x = x.astype(np.float32)
    beyond = np.array([np.nextafter(np.float32(6400), np.float32(np.inf)), -6400.5, 1e6, 3.4e38, -3.4e38,
                       np.inf, -np.inf, np.nan], dtype=np.float32)
    out = run(driver, ["sincos " + hexes([v]) for v in np.concatenate([x, beyond])])
    got = np.array([floats(line) for line in out], dtype=np.float64)
    xd = x.astype(np.float64)
    for column, exact in ((0, np.sin(xd)), (1, np.cos(xd))):
        err = np.abs(got[:len(x), column] - exact)
        assert np.max(err) <= 9e-8, ("abs", column, x[np.argmax(err)])
        ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
        small = (np.abs(exact) > 1e-30) & (np.abs(xd) <= np.pi / 4)
        assert np.max(err[small] / ulp[small]) <= 2.0, ("ulps", column)
    assert np.all(np.isnan(got[len(x):]))


def test_sqrt_every_exponent(driver):
    """mpyml_sqrtf within 1 ulp of numpy's correctly rounded sqrt, subnormals included; special values."""
    rng = np.random.default_rng(SEED + 3)
    bits = np.concatenate([rng.integers(0, 0x7F800000, 20000), np.arange(0, 3000), 0x7F7FFFFF - np.arange(100),
                           0x00800000 + np.arange(-50, 50)]).astype(np.uint32)
    x = bits.view(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -1e-45, 1.0, 4.0, 2.0], dtype=np.float32)
    out = run(driver, ["sqrt " + hexes([v]) for v in np.concatenate([x, special])])
    got = np.array([floats(line)[0] for line in out], dtype=np.float32)
    exact = np.sqrt(x)
    ulps = np.abs(got[:len(x)].astype(np.float64) - exact) / np.spacing(exact).astype(np.float64)
    assert np.max(ulps) <= 1.0
    tail = got[len(x):]
    assert tail[0] == 0 and tail[1] == 0 and tail[2] == np.inf
    assert np.all(np.isnan(tail[3:7]))
    assert list(tail[7:]) == [1.0, 2.0, np.float32(np.sqrt(np.float32(2.0)))]
    assert np.array_equal(got.view(np.uint32)[:len(x)], mirror.sqrt(x).view(np.uint32))


def test_size_validation(driver):
    sizes = list(range(0, 5000)) + [1 << k for k in range(13, 32)] + [(1 << k) + 1 for k in range(13, 31)] + [0xFFFFFFFF]
    out = run(driver, ["size %d" % n for n in sizes])
    bad = "error %d" % _error_code("FFT_SIZE")
    for n, line in zip(sizes, out):
        if n in SIZES:
            assert line == "ok %d %d" % (n.bit_length() - 1, 8 * n)
            assert mirror.check_size(n) == n.bit_length() - 1 and mirror.ram_bytes(n) == 8 * n
        else:
            assert line == bad, n
    # every command refuses a bad size before touching any array
    assert run(driver, ["forward 12", "inverse 4096000", "magnitude 7", "power 0", "twiddle 8192"]) == [bad] * 5
    with pytest.raises(ValueError, match="power of two from 8 to 4096, got 12"):
        mirror.check_size(12)


def test_nan_and_inf_inputs_propagate_without_faults(driver):
    """NaN, inf and float32's largest value run through every transform under the sanitizers;
    NaN and inf show up in the output."""
    lines, overflows = [], []
    for n in (8, 64, 4096):
        x = np.linspace(-1, 1, n).astype(np.float32)
        for special in (np.nan, np.inf, -np.inf, 3.4e38):
            y = x.copy()
            y[n // 2] = special
            lines += ["forward %d %s %s" % (n, hexes(y), hexes(x)), "inverse %d %s %s" % (n, hexes(x), hexes(y)),
                      "magnitude %d %s" % (n, hexes(y)), "power %d %s" % (n, hexes(y))]
            overflows += [special == 3.4e38] * 4
    out = run(driver, lines)
    for line, finite_input in zip(out, overflows):
        if not finite_input:
            assert not np.all(np.isfinite(floats(line)))
