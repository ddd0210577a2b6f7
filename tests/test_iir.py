"""emliir on the unix port: parity with scipy.signal.sosfilt, chunked streaming, the Q15 path,
the coefficients file, bad input and zero heap allocation.

The device's float path computes in float32 in C whatever the port's Python float is
(the loader moves coefficients as float32 bits, with no float arithmetic), so the unix
port runs exactly what a float32 MCU port runs; the tests compare it bit for bit with
the float32 numpy mirror mpyml.iir.sosfilt_float32.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from mpyml import build, device, iir
from mpyml.formats import records

N_SAMPLES = 10000
# Where float32 cannot reach 1e-5 of the peak, the device may be this many times scipy's own float32 error
# (scipy.signal.sosfilt on the float32-rounded sos and float32 input, against the float64 filter).
FLOAT32_ERROR_MULTIPLE = 1.0

FAMILIES = {"butter": {}, "cheby1": {"rp": 1.0}, "cheby2": {"rs": 40.0}, "ellip": {"rp": 1.0, "rs": 50.0}}
BANDS = {"lowpass": 0.2, "highpass": 0.3, "bandpass": [0.1, 0.3], "bandstop": [0.15, 0.35]}
# Low cutoffs, where float32 arithmetic falls short of 1e-5 at high orders.
LOW_BANDS = {"lowpass": 0.01, "highpass": 0.02, "bandpass": [0.01, 0.03], "bandstop": [0.02, 0.04]}


@pytest.fixture(scope="session")
def emliir_x64():
    return build.build("emliir", "x64")


def design(family, order, btype, wn):
    return signal.iirfilter(order, wn, btype=btype, ftype=family, output="sos", **FAMILIES[family])


def make_signal(rng, n=N_SAMPLES) -> np.ndarray:
    t = np.arange(n)
    x = 0.6 * np.sin(0.05 * t) + 0.3 * np.sin(0.7 * t + 1) + 0.2 * rng.normal(size=n)
    x[n // 3] += 3.0  # an impulse
    return x.astype(np.float32)


def chunk_sizes(rng, n=N_SAMPLES) -> list[int]:
    """Varied chunk sizes that add up to n, with 0 and 1 among them."""
    sizes = [0, 1, 1, 0, 2, 7]
    while sum(sizes) < n:
        sizes.append(int(rng.choice([0, 1, 3, 64, 255, 1000, int(rng.integers(0, 2000))])))
    sizes[-1] -= sum(sizes) - n
    return sizes


_RUN_FLOAT = """
import array, emliir
def load(path, typecode, n):
    a = array.array(typecode, bytes(n * (2 if typecode == 'h' else 4)))
    with open(path, 'rb') as f:
        f.readinto(a)
    return a
x = load({x_path!r}, {typecode!r}, {n})
cases = {cases!r}
with open({out_path!r}, 'wb') as out:
    for sos_path, n_values, chunks in cases:
        sos = load(sos_path, {typecode!r}, n_values)
        filt = emliir.new(sos) if {typecode!r} == 'f' else emliir.new_q15(sos)
        y = array.array({typecode!r}, x)
        view = memoryview(y)
        start = 0
        for size in chunks:
            filt.run(view[start:start + size])
            start += size
        out.write(y)
"""


def run_filters(tmp_path: Path, coeffs: list[np.ndarray], x: np.ndarray, chunks: list[list[int]]) -> np.ndarray:
    """Runs each filter over x on the device, fed in the given chunks; returns outputs (n_filters, len(x))."""
    q15 = x.dtype == np.int16
    x_path, out_path = tmp_path / "x.bin", tmp_path / "y.bin"
    x_path.write_bytes(x.astype("<i2" if q15 else "<f4").tobytes())
    cases = []
    for i, c in enumerate(coeffs):
        path = tmp_path / ("sos%d.bin" % i)
        path.write_bytes(np.asarray(c, dtype="<i2" if q15 else "<f4").tobytes())
        cases.append((str(path), int(np.asarray(c).size), chunks[i]))
    device.run(_RUN_FLOAT.format(x_path=str(x_path), typecode="h" if q15 else "f", n=len(x), cases=cases,
                                 out_path=str(out_path)))
    return np.frombuffer(out_path.read_bytes(), dtype="<i2" if q15 else "<f4").reshape(len(coeffs), len(x))


PARITY_CASES = [(family, order, btype, BANDS[btype]) for family in FAMILIES for btype in BANDS for order in range(2, 9)]
PARITY_CASES += [(family, order, btype, LOW_BANDS[btype]) for family in FAMILIES for btype in LOW_BANDS
                 for order in (2, 4, 6, 8)]


@pytest.fixture(scope="module")
def float_parity(emliir_x64, tmp_path_factory):
    rng = np.random.default_rng(11)
    x = make_signal(rng)
    designs = [design(*case) for case in PARITY_CASES]
    chunks = [chunk_sizes(rng) for _ in designs]
    got = run_filters(tmp_path_factory.mktemp("float"), [iir.float32_sos(s) for s in designs], x, chunks)
    return x, designs, chunks, got


def test_float_parity_with_scipy(float_parity):
    """Every filter within 1e-5 of scipy's float64 sosfilt relative to the signal's peak, or, where float32
    cannot get there, within FLOAT32_ERROR_MULTIPLE times scipy's own float32 error; and bit for bit the
    float32 numpy mirror (which is scipy's float32 sosfilt)."""
    x, designs, chunks, got = float_parity
    peak = np.abs(x).max()
    within_1e5 = 0
    for case, sos, y in zip(PARITY_CASES, designs, got):
        exact = signal.sosfilt(sos, x.astype(np.float64))
        scipy32 = signal.sosfilt(iir.float32_sos(sos), x)
        assert scipy32.dtype == np.float32
        np.testing.assert_array_equal(y.view(np.uint32), scipy32.view(np.uint32), err_msg=str(case))
        error = np.abs(y - exact).max() / peak
        scipy_error = np.abs(scipy32 - exact).max() / peak
        assert error <= 1e-5 or error <= FLOAT32_ERROR_MULTIPLE * scipy_error, (case, error, scipy_error)
        # The fallback is only for the low cutoffs: every filter of the main grid meets 1e-5.
        assert error <= 1e-5 or case[3] == LOW_BANDS[case[2]], (case, error)
        within_1e5 += error <= 1e-5
    assert within_1e5 >= len(PARITY_CASES) - 40, within_1e5  # measured: 146 of 176


def test_float_reference_mirror_is_scipy_float32(float_parity):
    x, designs, _, got = float_parity
    for i in (0, 30, 60, 111):
        want, _ = iir.sosfilt_float32(designs[i], x)
        np.testing.assert_array_equal(got[i].view(np.uint32), want.view(np.uint32))


def test_chunks_include_empty_and_single(float_parity):
    _, _, chunks, _ = float_parity
    for sizes in chunks:
        assert 0 in sizes and 1 in sizes and sum(sizes) == N_SAMPLES


def test_run_on_separate_arrays_and_reset(emliir_x64):
    """State carries across separate arrays ('f' chunks copied in and out), and reset() starts over."""
    sos = design("ellip", 6, "bandpass", [0.1, 0.2])
    x = make_signal(np.random.default_rng(3), 2000)
    out = device.run(f"""
import array, emliir
sos = array.array('f', {iir.float32_sos(sos).ravel().tolist()!r})
x = array.array('f', {x.tolist()!r})
f = emliir.new(sos)
print(f.n_stages, f.typecode)
y = []
for start, stop in ((0, 0), (0, 1), (1, 2), (2, 700), (700, 700), (700, 2000)):
    part = array.array('f', x[start:stop])
    assert f.run(part) is part
    y.extend(part)
f.reset()
again = f.run(array.array('f', x[:300]))
print(' '.join('%r' % v for v in y))
print(' '.join('%r' % v for v in again))
""").splitlines()
    assert out[0] == "6 f"
    want, _ = iir.sosfilt_float32(sos, x)
    np.testing.assert_array_equal(np.array(out[1].split(), dtype=np.float64).astype(np.float32), want)
    np.testing.assert_array_equal(np.array(out[2].split(), dtype=np.float64).astype(np.float32), want[:300])


# ---------------------------------------------------------------- Q15


Q15_CASES = [(family, order, btype, BANDS[btype]) for family in FAMILIES for btype in BANDS for order in (2, 4, 6)]


def quantize_quietly(sos):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", iir.Q15Warning)
        return iir.quantize_q15(sos)


@pytest.fixture(scope="module")
def q15_parity(emliir_x64, tmp_path_factory):
    rng = np.random.default_rng(12)
    x = np.round(make_signal(rng).astype(np.float64) * 8000).astype(np.int16)  # peak ~ 0.9 of full scale
    designs = [design(*case) for case in Q15_CASES]
    q15 = [quantize_quietly(s) for s in designs]
    got = run_filters(tmp_path_factory.mktemp("q15"), q15, x, [chunk_sizes(rng) for _ in designs])
    return x, designs, q15, got


def test_q15_matches_integer_reference(q15_parity):
    x, _, q15, got = q15_parity
    for case, q, y in zip(Q15_CASES, q15, got):
        np.testing.assert_array_equal(y, iir.sosfilt_q15(q, x)[0], err_msg=str(case))


def test_q15_error_within_stated_bound(q15_parity):
    """|Q15 output - exact float64 filter| <= q15_error_bound (docs/formats.md) whenever nothing saturates;
    and the bound is not vacuous: for Butterworth filters of order 2-4 it stays below 0.5% of full scale."""
    x, designs, q15, got = q15_parity
    peak = int(np.abs(x.astype(np.int64)).max())
    for case, sos, q, y in zip(Q15_CASES, designs, q15, got):
        _, _, saturated = iir.sosfilt_q15(q, x, return_saturations=True)
        assert saturated == 0, case
        exact = signal.sosfilt(sos, x.astype(np.float64))
        bound = iir.q15_error_bound(sos, q, peak=peak, n_samples=len(x))
        error = np.abs(y - exact).max()
        assert error <= bound + 1e-6, (case, error, bound)
        if case[1] <= 4 and case[0] == "butter":
            assert bound < 0.005 * 32768, (case, bound)


def test_q15_saturates_instead_of_wrapping(emliir_x64):
    """A full-scale square wave through a resonant filter saturates at the int16 limits; no wrap-around."""
    sos = design("cheby1", 2, "bandpass", [0.1, 0.12])
    q15 = iir.quantize_q15(sos, scale=False)
    x = np.tile(np.r_[np.full(9, 32767), np.full(9, -32768)], 50).astype(np.int16)
    out = device.run(f"""
import array, emliir
f = emliir.new_q15(array.array('h', {q15.ravel().tolist()!r}))
x = array.array('h', {x.tolist()!r})
f.run(x)
print(' '.join(str(v) for v in x))
""")
    y = np.array(out.split(), dtype=np.int64)
    want, _, saturated = iir.sosfilt_q15(q15, x, return_saturations=True)
    assert saturated > 0
    np.testing.assert_array_equal(y, want)
    assert y.max() == 32767 and y.min() == -32768


def test_q15_quantization_layout_and_warning():
    sos = design("butter", 4, "bandpass", [0.1, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", iir.Q15Warning)
        q = iir.quantize_q15(sos)
    assert q.dtype == np.int16 and q.shape == (4, 6)
    frac = np.log2(q[:, 3].astype(float))
    assert np.all(frac == np.round(frac)) and np.all((0 <= frac) & (frac <= 14))
    assert np.all(np.abs(q[:, [0, 1, 2, 4, 5]].astype(np.int64)).sum(axis=1) <= 65535)
    # the scaled cascade is the same filter: its response matches the exact one within 1% of the peak
    w, exact = signal.sosfreqz(sos, 2048)
    _, quantized = signal.sosfreqz(iir.q15_real(q), 2048)
    assert np.abs(exact - quantized).max() < 0.01
    with pytest.warns(iir.Q15Warning, match="unstable"):
        iir.quantize_q15(design("butter", 8, "lowpass", 0.002))
    with pytest.warns(iir.Q15Warning, match="differs from the exact one"):
        iir.quantize_q15(design("ellip", 8, "bandpass", [0.1, 0.3]))


# ---------------------------------------------------------------- the coefficients file


def test_file_round_trip_and_device_load(emliir_x64, tmp_path):
    sos = design("cheby2", 5, "bandstop", [0.2, 0.3])
    q15 = quantize_quietly(design("butter", 3, "highpass", 0.25))
    iir.save(sos, tmp_path / "f.iir")
    iir.save(q15, tmp_path / "q.iir")
    np.testing.assert_array_equal(iir.load(tmp_path / "f.iir").view(np.uint32), iir.float32_sos(sos).view(np.uint32))
    np.testing.assert_array_equal(iir.load(tmp_path / "q.iir"), q15)
    text = (tmp_path / "f.iir").read_text()
    assert text.startswith("mpyml-iir,2\ndtype,float32\nn_stages,5\nstages\n") and text.splitlines()[-1].startswith("end,")
    x = make_signal(np.random.default_rng(4), 500)
    xi = np.round(x.astype(np.float64) * 5000).astype(np.int16)
    out = device.run(f"""
import array, emliir
f = emliir.load({str(tmp_path / "f.iir")!r})
with open({str(tmp_path / "q.iir")!r}, 'rb') as fh:
    q = emliir.load(fh)
print(f.typecode, f.n_stages, q.typecode, q.n_stages)
x = array.array('f', {x.tolist()!r})
xi = array.array('h', {xi.tolist()!r})
f.run(x)
q.run(xi)
print(' '.join('%r' % v for v in x))
print(' '.join(str(v) for v in xi))
""").splitlines()
    assert out[0] == "f 5 h 2"
    np.testing.assert_array_equal(np.array(out[1].split(), dtype=np.float64).astype(np.float32),
                                  iir.sosfilt_float32(sos, x)[0])
    np.testing.assert_array_equal(np.array(out[2].split(), dtype=np.int64), iir.sosfilt_q15(q15, xi)[0])


# ---------------------------------------------------------------- bad input


GOOD = "0.2, 0.4, 0.2, 1.0, -0.5, 0.25"
BAD_CALLS = [
    ("emliir.new(array.array('h', [1, 2, 3, 1, 0, 0]))", "TypeError", ["sos", "array('f')", "'h'"]),
    ("emliir.new([0.2, 0.4, 0.2, 1.0, -0.5, 0.25])", "TypeError", ["sos", "array('f')", "list"]),
    ("emliir.new(array.array('f'))", "ValueError", ["multiple of 6", "got 0"]),
    ("emliir.new(array.array('f', [%s, 1.0]))" % GOOD, "ValueError", ["multiple of 6", "got 7"]),
    ("emliir.new(array.array('f', [%s, 1, 2, 3, 1, 4]))" % GOOD, "ValueError", ["multiple of 6", "got 11"]),
    ("emliir.new(array.array('f', [%s, 0.2, 0.4, 0.2, 1.0, float('nan'), 0.25]))" % GOOD, "ValueError",
     ["stage 1", "NaN or infinite"]),
    ("emliir.new(array.array('f', [float('inf'), 0.4, 0.2, 1.0, -0.5, 0.25]))", "ValueError", ["stage 0", "infinite"]),
    ("emliir.new(array.array('f', [0.2, 0.4, 0.2, 2.0, -0.5, 0.25]))", "ValueError", ["stage 0", "a0", "must be 1"]),
    ("emliir.new_q15(array.array('f', [%s]))" % GOOD, "TypeError", ["array('h')", "'f'"]),
    ("emliir.new_q15(array.array('h', [1, 2, 3, 3, 0, 0]))", "ValueError", ["stage 0", "2**frac"]),
    ("emliir.new_q15(array.array('h', [1, 2, 3, 1, 0, 0, 30000, 30000, 30000, 16384, 0, 0]))", "ValueError",
     ["stage 1", "65535", "overflow"]),
    ("emliir.new_q15(array.array('h', [1, 2, 3, 1, 0]))", "ValueError", ["multiple of 6", "got 5"]),
    ("emliir.new(array.array('f', [%s])).run(array.array('h', [1, 2]))" % GOOD, "TypeError", ["values", "array('f')", "'h'"]),
    ("emliir.new(array.array('f', [%s])).run(array.array('d', [1, 2]))" % GOOD, "TypeError", ["values", "array('f')"]),
    ("emliir.new(array.array('f', [%s])).run([1.0, 2.0])" % GOOD, "TypeError", ["values", "list"]),
    ("emliir.new(array.array('f', [%s])).run(b'abcd')" % GOOD, "TypeError", ["values", "array('f')"]),
    ("emliir.new_q15(array.array('h', [1, 0, 0, 1, 0, 0])).run(array.array('f', [1]))", "TypeError", ["array('h')", "'f'"]),
    ("emliir.IIR.run(42, array.array('f'))", "TypeError", ["IIR", "int"]),
    ("emliir.IIR.reset('x')", "TypeError", ["IIR", "str"]),
]


def test_bad_calls_raise_clear_errors(emliir_x64):
    script = "import array, emliir\n"
    for call, _, _ in BAD_CALLS:
        script += "try:\n    %s\n    print('no error')\nexcept Exception as e:\n    print(type(e).__name__, '|', e)\n" % call
    script += "print('alive')\n"
    out = device.run(script).splitlines()
    assert out[-1] == "alive"
    for (call, kind, words), line in zip(BAD_CALLS, out):
        assert line.startswith(kind + " |"), (call, line)
        for word in words:
            assert word in line, (call, word, line)


def good_file(dtype="float32"):
    if dtype == "int16":
        return ["mpyml-iir,2", "dtype,int16", "n_stages,2", "stages", "8192,16384,8192,16384,-8000,3000",
                "100,0,-100,16384,-9000,4000"]
    bits = ",".join("%08x" % b for b in np.array([0.2, 0.4, 0.2, 1.0, -0.5, 0.25], dtype=np.float32).view(np.uint32))
    return ["mpyml-iir,2", "# comment", "dtype,float32", "n_stages,2", "stages", bits, "", bits]


def sealed(lines):
    return records.seal("\n".join(lines) + "\n")


def edit(lines, index, new):
    lines = list(lines)
    lines[index] = new
    return lines


# (name, file: a list of lines, sealed with a correct end record, or the raw text, words of the error)
BAD_FILES = [
    ("empty", "", ["line 0", "truncated or corrupt", "mpyml-iir"]),
    ("random bytes", "\x8f\x03zq\n\x00\xff", ["truncated or corrupt"]),
    ("other format", ["mpyml-trees,1"] + good_file()[1:], ["line 1", "mpyml-iir"]),
    ("version 1", edit(good_file(), 0, "mpyml-iir,1"),
     ["line 1", "version 1 is no longer read by this emliir (it reads version 2): export the filter again"]),
    ("version 3", edit(good_file(), 0, "mpyml-iir,3"), ["line 1", "version 3"]),
    ("dtype", edit(good_file(), 2, "dtype,float64"), ["line 3", "float64"]),
    ("zero stages", edit(good_file(), 3, "n_stages,0"), ["line 4", "n_stages must be 1..65535"]),
    ("2**64 stages", edit(good_file(), 3, "n_stages,18446744073709551617"), ["line 4", "n_stages must be 1..65535"]),
    ("more stages than the file holds", edit(good_file(), 3, "n_stages,65535"),
     ["line 4", "truncated or corrupt: file says 65535 stages"]),
    ("missing section", edit(good_file(), 4, "# no section"), ["line 6", "'stages' section"]),
    ("short stage", edit(good_file(), 5, "3e4ccccd,3ecccccd"), ["line 6", "needs 6 fields", "got 2"]),
    ("bad hex", edit(good_file(), 7, "3e4ccccd,3ecccccd,3e4ccccd,3f800000,bf000000,zz800000"), ["line 8", "8 hex digits", "zz800000"]),
    ("signed hex", edit(good_file(), 7, "3e4ccccd,3ecccccd,3e4ccccd,3f800000,bf000000,-0000001"), ["line 8", "8 hex digits", "-0000001"]),
    ("0x hex", edit(good_file(), 7, "3e4ccccd,3ecccccd,3e4ccccd,3f800000,bf000000,0x3f8000"), ["line 8", "8 hex digits", "0x3f8000"]),
    ("NaN", edit(good_file(), 7, "3e4ccccd,3ecccccd,3e4ccccd,3f800000,7fc00000,3e800000"), ["line 8", "NaN or infinite"]),
    ("a0", edit(good_file(), 5, "3e4ccccd,3ecccccd,3e4ccccd,40000000,bf000000,3e800000"), ["line 6", "a0", "must be 1"]),
    ("too few stages", good_file()[:6], ["line 7", "truncated or corrupt", "expected a stage"]),
    ("too many stages", good_file() + [good_file()[5]], ["line 9", "unexpected line after the last stage"]),
    ("int16 range", edit(good_file("int16"), 4, "40000,0,0,16384,0,0"), ["line 5", "must be -32768..32767"]),
    ("int16 2**64", edit(good_file("int16"), 4, "18446744073709551616,0,0,16384,0,0"), ["line 5", "must be -32768..32767"]),
    ("int16 text", edit(good_file("int16"), 5, "1.5,0,0,16384,0,0"), ["line 6", "decimal integer", "1.5"]),
    ("q15 a0", edit(good_file("int16"), 5, "100,0,-100,1000,-9000,4000"), ["line 6", "2**frac"]),
    ("no end record", "\n".join(good_file()) + "\n", ["line 8", "truncated or corrupt", "without its end record"]),
    ("cut short", sealed(good_file())[:-40], ["line 8", "truncated or corrupt", "ends inside line 8"]),
    ("changed byte", sealed(good_file()).replace("3e4ccccd", "3e4ccccc", 1), ["line 9", "truncated or corrupt", "CRC-32"]),
]


def test_bad_files_raise_with_line(emliir_x64, tmp_path):
    script = "import emliir\n"
    for i, (name, lines, _) in enumerate(BAD_FILES):
        path = tmp_path / ("bad%d.iir" % i)
        path.write_bytes((sealed(lines) if isinstance(lines, list) else lines).encode("latin-1"))
        script += "try:\n    emliir.load(%r)\n    print('no error')\nexcept ValueError as e:\n    print(e)\n" % str(path)
    for dtype in ("float32", "int16"):
        path = tmp_path / ("good_%s.iir" % dtype)
        path.write_text(sealed(good_file(dtype)))
        script += "print(emliir.load(%r).n_stages)\n" % str(path)
    out = device.run(script).splitlines()
    assert out[-2:] == ["2", "2"]
    for (name, lines, words), line in zip(BAD_FILES, out):
        assert line.startswith("filter file"), (name, line)
        for word in words:
            assert word in line, (name, word, line)
        with pytest.raises(ValueError):  # the host reader refuses every file the device refuses
            iir.loads((sealed(lines) if isinstance(lines, list) else lines).encode("latin-1"))
    with pytest.raises(ValueError, match="line 8"):
        iir.loads(sealed(BAD_FILES[11][1]))


def test_host_rejects_bad_sos():
    good = design("butter", 2, "lowpass", 0.2)
    with pytest.raises(ValueError, match="multiple of 6"):
        iir.check_sos(np.ones(7))
    with pytest.raises(ValueError, match="stage 1.*NaN"):
        iir.check_sos(np.vstack([good, [1, 0, 0, 1, np.nan, 0]]))
    with pytest.raises(ValueError, match="stage 0: a0 must be 1"):
        iir.check_sos([[1, 0, 0, 2, 0, 0]])


def test_run_and_reset_allocate_nothing(emliir_x64):
    sos = iir.float32_sos(design("butter", 4, "bandpass", [0.1, 0.3])).ravel().tolist()
    q15 = quantize_quietly(design("butter", 4, "bandpass", [0.1, 0.3])).ravel().tolist()
    out = device.run(f"""
import array, emliir, gc
f = emliir.new(array.array('f', {sos!r}))
q = emliir.new_q15(array.array('h', {q15!r}))
x = array.array('f', range(256))
xi = array.array('h', range(256))
empty = array.array('f')
def calls():
    f.run(x)
    f.run(empty)
    q.run(xi)
    f.reset()
    q.reset()
def measure():  # locals only: a new global would grow the module's dict
    calls()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(200):
        calls()
    return gc.mem_alloc() - before
print(measure())
""")
    assert int(out) == 0
