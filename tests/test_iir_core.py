"""The portable IIR core (natmods/common/mpyml_iir.h) built for the host under ASan and UBSan.

tests/c/iir_driver.c runs the core on filters and signals sent as text. The tests check
that the float32 path equals mpyml.iir.sosfilt_float32 (and scipy's float32 sosfilt) bit
for bit and the Q15 path equals mpyml.iir.sosfilt_q15 exactly, in chunks of any size,
including saturating and unstable Q15 filters at full scale, and that every invalid
coefficient set is rejected with the right error code and stage.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from c_errors import error_codes
from mpyml import iir

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER_SOURCE = ROOT / "tests" / "c" / "iir_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", "-g", "-I", str(COMMON)]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


CODE = error_codes()


@pytest.fixture(scope="module", params=["O0", "O2"])
def driver(request, tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("iir_" + request.param) / "iir_driver"
    proc = subprocess.run(["gcc", *CFLAGS, "-" + request.param, "-o", str(exe), str(DRIVER_SOURCE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, "gcc failed:\n" + proc.stdout + proc.stderr
    return exe


def run(exe: Path, lines: list[str]) -> list[str]:
    proc = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **SANITIZER_ENV))
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-4000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def f32_command(sos) -> str:
    c = np.asarray(sos, dtype=np.float32).reshape(-1)
    return "f32 %d " % (c.size // 6) + " ".join("%08x" % b for b in c.view(np.uint32))


def q15_command(q15) -> str:
    c = np.asarray(q15).reshape(-1)
    return "q15 %d " % (c.size // 6) + " ".join(str(int(v)) for v in c)


def run_commands(x, chunks, float32: bool) -> list[str]:
    lines, start = [], 0
    for size in chunks:
        part = x[start:start + size]
        start += size
        values = " ".join("%08x" % b for b in part.view(np.uint32)) if float32 else " ".join(str(int(v)) for v in part)
        lines.append(("run %d " % len(part)) + values)
    assert start == len(x)
    return lines


def parse_outputs(out: list[str], float32: bool) -> np.ndarray:
    values = [v for line in out if line != "-" for v in line.split()]
    if float32:
        return np.array([int(v, 16) for v in values], dtype=np.uint32).view(np.float32)
    return np.array([int(v) for v in values], dtype=np.int16)


def chunk_sizes(n: int, rng) -> list[int]:
    sizes = [0, 1, 0, 1, 2, 3]
    while sum(sizes) < n:
        sizes.append(int(rng.integers(0, 700)))
        if rng.random() < 0.2:
            sizes.append(0)
    sizes[-1] -= sum(sizes) - n
    return sizes


FILTERS = [
    ("butter", 2, "lowpass", 0.05, {}),
    ("butter", 4, "bandpass", [0.1, 0.3], {}),
    ("cheby1", 5, "highpass", 0.3, {"rp": 1}),
    ("cheby2", 6, "bandstop", [0.2, 0.4], {"rs": 40}),
    ("ellip", 8, "lowpass", 0.25, {"rp": 0.5, "rs": 60}),
    ("ellip", 3, "bandpass", [0.02, 0.05], {"rp": 1, "rs": 50}),
]


def design(ftype, order, btype, wn, kw):
    return signal.iirfilter(order, wn, btype=btype, ftype=ftype, output="sos", **kw)


@pytest.mark.parametrize("spec", FILTERS, ids=lambda s: "%s%d-%s" % s[:3])
def test_float32_matches_reference_bit_for_bit(driver, spec):
    rng = np.random.default_rng(1)
    sos = design(*spec)
    x = (rng.normal(size=3000) * 3 + np.sin(np.arange(3000) * 0.3) * 5).astype(np.float32)
    x[100] = 1e30  # an impulse far beyond the signal
    out = run(driver, [f32_command(iir.float32_sos(sos))] + run_commands(x, chunk_sizes(len(x), rng), True)
              + ["reset"] + run_commands(x[:500], [500], True))
    assert out[0] == "ok"
    got = parse_outputs(out[1:], True)
    want, _ = iir.sosfilt_float32(sos, x)
    np.testing.assert_array_equal(got[:len(x)].view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(want.view(np.uint32), signal.sosfilt(iir.float32_sos(sos), x).view(np.uint32))
    np.testing.assert_array_equal(got[len(x):].view(np.uint32), want[:500].view(np.uint32))


def test_float32_state_continues_in_reference(driver):
    """sosfilt_float32's returned state continues a signal exactly as the device does."""
    sos = design(*FILTERS[1])
    x = np.random.default_rng(2).normal(size=1000).astype(np.float32)
    first, state = iir.sosfilt_float32(sos, x[:377])
    second, _ = iir.sosfilt_float32(sos, x[377:], state)
    whole, _ = iir.sosfilt_float32(sos, x)
    np.testing.assert_array_equal(np.concatenate([first, second]).view(np.uint32), whole.view(np.uint32))


@pytest.mark.parametrize("spec", FILTERS[:5], ids=lambda s: "%s%d-%s" % s[:3])
def test_q15_matches_reference_exactly(driver, spec):
    rng = np.random.default_rng(3)
    q15 = iir.quantize_q15(design(*spec))
    # Full scale, including the extremes: the scaled stages saturate at times.
    x = rng.integers(-32768, 32768, size=3000).astype(np.int16)
    x[:4] = [-32768, -32768, 32767, 32767]
    out = run(driver, [q15_command(q15)] + run_commands(x, chunk_sizes(len(x), rng), False)
              + ["reset"] + run_commands(x[:400], [400], False))
    assert out[0] == "ok"
    got = parse_outputs(out[1:], False)
    want, _ = iir.sosfilt_q15(q15, x)
    np.testing.assert_array_equal(got[:len(x)], want)
    np.testing.assert_array_equal(got[len(x):], want[:400])


def random_q15(rng, n_stages: int) -> np.ndarray:
    """Random valid Q15 stages, most of them unstable: the accumulator bound is the only limit."""
    rows = []
    for _ in range(n_stages):
        frac = int(rng.integers(0, 15))
        c = rng.integers(-32768, 32768, size=5)
        c = np.trunc(c * min(1.0, 65535 / np.abs(c).sum())).astype(np.int64)
        rows.append([c[0], c[1], c[2], 1 << frac, c[3], c[4]])
    return np.array(rows, dtype=np.int16)


def test_q15_random_coefficients_at_the_accumulator_limit(driver):
    rng = np.random.default_rng(4)
    lines, cases = [], []
    limit = np.array([[-32768, 32000, 0, 1 << 14, -700, -67]], dtype=np.int16)  # sum exactly 65535
    for q15 in [limit] + [random_q15(rng, int(rng.integers(1, 5))) for _ in range(30)]:
        x = rng.choice(np.array([-32768, 32767, 0, 1, -1], dtype=np.int16), size=200)
        x[50:] = rng.integers(-32768, 32768, size=150)
        lines += [q15_command(q15), "run 200 " + " ".join(str(int(v)) for v in x)]
        cases.append((q15, x))
    out = run(driver, lines)
    for i, (q15, x) in enumerate(cases):
        assert out[2 * i] == "ok"
        np.testing.assert_array_equal(parse_outputs([out[2 * i + 1]], False), iir.sosfilt_q15(q15, x)[0])


def test_stage_counts(driver):
    out = run(driver, ["count %d" % n for n in (0, 1, 5, 6, 7, 12, 6 * 65535, 6 * 65535 + 6, 6 * 65536)])
    assert out == ["error %d" % CODE["SOS_LENGTH"], "error %d" % CODE["SOS_LENGTH"], "error %d" % CODE["SOS_LENGTH"],
                   "stages 1", "error %d" % CODE["SOS_LENGTH"], "stages 2", "stages 65535",
                   "error %d" % CODE["IIR_TOO_MANY_STAGES"], "error %d" % CODE["IIR_TOO_MANY_STAGES"]]


GOOD = [0.2, 0.4, 0.2, 1.0, -0.5, 0.25]
INVALID_F32 = [
    ([GOOD, [0.2, 0.4, 0.2, 1.0, np.nan, 0.25]], "SOS_NOT_FINITE", 1),
    ([[np.inf, 0.4, 0.2, 1.0, -0.5, 0.25]], "SOS_NOT_FINITE", 0),
    ([GOOD, GOOD, [0.2, 0.4, -np.inf, 1.0, -0.5, 0.25]], "SOS_NOT_FINITE", 2),
    ([GOOD, [0.2, 0.4, 0.2, 1.0000001, -0.5, 0.25]], "SOS_A0", 1),
    ([[0.2, 0.4, 0.2, 0.0, -0.5, 0.25]], "SOS_A0", 0),
    ([[0.2, 0.4, 0.2, -1.0, -0.5, 0.25]], "SOS_A0", 0),
    ([[0.2, 0.4, 0.2, np.nan, -0.5, 0.25]], "SOS_NOT_FINITE", 0),
]


@pytest.mark.parametrize("sos,error,stage", INVALID_F32)
def test_invalid_float32_sos(driver, sos, error, stage):
    out = run(driver, [f32_command(np.array(sos, dtype=np.float32))])
    assert out == ["error %d %d" % (CODE[error], stage)]


Q_GOOD = [8192, 16384, 8192, 16384, -8000, 3000]
INVALID_Q15 = [
    ([Q_GOOD, [8192, 16384, 8192, 16383, -8000, 3000]], "Q15_A0", 1),
    ([[8192, 16384, 8192, 0, -8000, 3000]], "Q15_A0", 0),
    ([[8192, 16384, 8192, -32768, -8000, 3000]], "Q15_A0", 0),  # 2**15 does not fit int16
    ([[8192, 16384, 8192, -16384, -8000, 3000]], "Q15_A0", 0),
    ([Q_GOOD, [32767, 32767, 1, 16384, 1, 0]], "Q15_COEFF_SUM", 1),
    ([[-32768, -32768, -32768, 1, -32768, -32768]], "Q15_COEFF_SUM", 0),
]


@pytest.mark.parametrize("sos,error,stage", INVALID_Q15)
def test_invalid_q15_sos(driver, sos, error, stage):
    out = run(driver, [q15_command(np.array(sos, dtype=np.int16))])
    assert out == ["error %d %d" % (CODE[error], stage)]
    with pytest.raises(ValueError, match="stage %d" % stage):
        iir.check_q15(np.array(sos, dtype=np.int16))


def test_valid_edge_q15_sos(driver):
    """a0 = 1 (frac 0) and a0 = 2**14, coefficient sums of exactly 65535."""
    out = run(driver, [q15_command(np.array([[1, 0, 0, 1, 0, 0]])), "run 3 -32768 5 32767",
                       q15_command(np.array([[32767, 32767, 1, 1 << 14, 0, 0]])), "run 3 32767 32767 -32768"])
    assert out[0] == "ok" and out[1] == "-32768 5 32767" and out[2] == "ok"
    q = np.array([[32767, 32767, 1, 1 << 14, 0, 0]])
    assert out[3] == " ".join(str(v) for v in iir.sosfilt_q15(q, np.array([32767, 32767, -32768]))[0])


def test_garbage_never_crashes(driver):
    """Random bit patterns as float32 coefficients: rejected or run, never a sanitizer report."""
    rng = np.random.default_rng(5)
    lines = []
    for _ in range(200):
        n = int(rng.integers(1, 4))
        bits = rng.integers(0, 2**32, size=6 * n, dtype=np.uint64).astype(np.uint32)
        if rng.random() < 0.5:
            bits.reshape(-1, 6)[:, 3] = 0x3F800000
        lines.append("f32 %d " % n + " ".join("%08x" % b for b in bits))
        lines.append("run 4 3f800000 00000000 7f800000 ff800000")
    out = run(driver, lines)
    assert any(line == "ok" for line in out) and any(line.startswith("error") for line in out)
