"""mpy/har_features: the same float32 bits from CPython, the unix port and a float32 port; checked against numpy and mpmath."""

import array
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpyml import device

REPO = Path(__file__).resolve().parent.parent
PORTABLE = [REPO / "mpy" / "npyfile", REPO / "mpy" / "har_features"]
DATA_DIR = REPO.parent / "shared" / "datasets" / "har_exercise_1" / "raw" / "data"
DATASET_FILES = sorted(p for p in DATA_DIR.glob("*.npy") if p.stat().st_size > 1000)

for _d in PORTABLE:
    sys.path.insert(0, str(_d))
import har_features  # noqa: E402

needs_dataset = pytest.mark.skipif(not DATASET_FILES, reason="dataset %s not present" % DATA_DIR)

# every window's features: the returned list as float64 bits, and the array('f') the model reads
FEATURES_SCRIPT = """
import array, binascii, struct, npyfile, har_features
for path, window, hop, chunk in %r:
    windower = har_features.Windower(window, hop, 3)
    out = array.array('f', [0.0] * har_features.n_features(3))
    with npyfile.Reader(path, allow_truncated=True) as r:
        n_whole = r.n_items - r.n_items %% 3
        done = 0
        for values in r.read_data_chunks(chunk):
            values = values[:n_whole - done]
            done += len(values)
            for w in windower.push(values):
                f = har_features.features(w, 3)
                print(binascii.hexlify(struct.pack('<%%dd' %% len(f), *f)).decode())
                har_features.features(w, 3, out)
                print(binascii.hexlify(bytes(out)).decode())
"""


def _cases():
    truncated = [p for p in DATASET_FILES if p.stat().st_size < 6000]
    complete = [p for p in DATASET_FILES if p.stat().st_size >= 6000]
    cases = [(str(complete[17]), 100, 50, 7), (str(complete[60]), 128, 32, 300),
             (str(truncated[0]), 100, 50, 99), (str(complete[90]), 50, 50, 3000)]
    return cases + [(str(p), 100, 50, 150) for p in complete[::4]]


@needs_dataset
def test_features_bit_identical_on_cpython_and_double_and_float32_unix_ports():
    script = FEATURES_SCRIPT % (_cases(),)
    env = dict(os.environ, PYTHONPATH=":".join(str(p) for p in PORTABLE))
    cpython = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    lines = cpython.splitlines()
    assert len(lines) > 2 * 400
    assert device.run(script, extra_path=PORTABLE).splitlines() == lines  # Python floats are double there
    assert device.run(script, extra_path=PORTABLE, float32=True).splitlines() == lines  # and float32 here
    for doubles, floats in zip(lines[::2], lines[1::2]):
        values = np.frombuffer(bytes.fromhex(doubles), dtype="<f8")
        # every returned value is a float32, exactly the one the array('f') holds
        assert np.frombuffer(bytes.fromhex(floats), dtype="<f4").tobytes() == values.astype(np.float32).tobytes()
        assert np.array_equal(values.astype(np.float32).astype(np.float64), values)


def numpy_features(window: np.ndarray) -> np.ndarray:
    """Independent numpy reference of har_features.features for one (n, axes) integer window."""
    n, n_axes = window.shape
    channels = [window[:, a].astype(np.float64) for a in range(n_axes)]
    # the magnitude of each sample, rounded to the nearest integer
    channels.append(np.rint(np.sqrt((window.astype(np.int64) ** 2).sum(axis=1).astype(np.float64))))
    out = []
    for c in channels:
        centred = c - c.mean()
        signs = centred > 0
        out += [c.mean(), c.std(), c.min(), c.max(), *np.percentile(c, [10, 25, 50, 75, 90]), np.mean(c * c),
                np.count_nonzero(signs[1:] != signs[:-1]), np.mean(np.abs(np.diff(c)))]
    for a in range(n_axes):
        for b in range(a + 1, n_axes):
            out.append(np.corrcoef(channels[a], channels[b])[0, 1])
    return np.array(out)


@needs_dataset
def test_features_match_an_independent_numpy_computation():
    rng = np.random.default_rng(5)
    windows = [np.load(p)[:100] for p in DATASET_FILES[::25] if p.stat().st_size >= 6000]
    windows += [rng.integers(-32768, 32768, size=(64, 3)), rng.integers(-5, 5, size=(33, 3))]
    for window in windows:
        got = np.array(har_features.features(array.array("h", window.astype(np.int16).ravel().tolist()), 3))
        # each feature is its exact value rounded once to float32: within half a float32 step (2**-24 relative)
        np.testing.assert_allclose(got, numpy_features(window), rtol=2.0 ** -24 * (1 + 1e-9), atol=1e-12)
    assert len(har_features.feature_names(3)) == har_features.n_features(3) == len(got) == 51


@needs_dataset
def test_windows_do_not_depend_on_chunk_sizes():
    values = array.array("h", np.load(DATASET_FILES[3]).ravel().tolist())
    n_rows = len(values) // 3
    for window, hop in ((100, 50), (128, 128), (64, 1), (37, 11)):
        expected = [values[start * 3:(start + window) * 3].tolist() for start in range(0, n_rows - window + 1, hop)]
        for chunk in (1, 3, 7, 150, len(values)):
            windower = har_features.Windower(window, hop, 3)
            got = [w.tolist() for start in range(0, len(values), chunk) for w in windower.push(values[start:start + chunk])]
            assert got == expected, (window, hop, chunk)


def test_constant_and_single_row_windows_and_bad_arguments():
    flat = har_features.features(array.array("h", [7, -3, 0] * 20), 3)
    assert flat[1] == 0.0 and flat[-3:] == [0.0, 0.0, 0.0]  # no spread: std 0, correlations 0 rather than NaN
    assert len(har_features.features(array.array("h", [1, 2, 3]), 3)) == 51
    with pytest.raises(ValueError, match="window of 7 values is not a whole number"):
        har_features.features(array.array("h", range(7)), 3)
    with pytest.raises(ValueError, match="need 1 <= hop <= window, got window 10, hop 11"):
        har_features.Windower(10, 11, 3)
    with pytest.raises(ValueError, match="out has 3 places, features need 51"):
        har_features.features(array.array("h", range(30)), 3, array.array("f", [0, 0, 0]))


def test_two_axis_and_float_free_integer_sums_stay_exact():
    # int16 extremes: integer sums are exact, so the mean of [-32768, 32767] * k is exactly -0.5
    window = array.array("h", [-32768, 32767, 32767, -32768] * 50)
    values = har_features.features(window, 2)
    assert values[0] == -0.5 and values[1] == 32767.5 and len(values) == har_features.n_features(2) == 37
    assert struct.pack("<d", values[0]) == struct.pack("<d", -0.5)


def _float32_of_bits(bits: int) -> float:
    return float(np.array([bits], dtype="<u4").view("<f4")[0])


def _mpmath_float32(exact_value) -> float:
    """mpmath's rounding of a (300-bit) value to 24 significant bits, nearest, ties to even."""
    import mpmath

    with mpmath.workprec(24):
        return float(+exact_value)


@settings(max_examples=400, deadline=None)
@given(st.integers(-2 ** 70, 2 ** 70), st.integers(1, 2 ** 40))
def test_ratios_round_to_nearest_float32_as_mpmath(num, den):
    import mpmath

    with mpmath.workprec(300):
        exact = mpmath.mpf(num) / den
    assert _float32_of_bits(har_features._ratio_bits(num, den)) == _mpmath_float32(exact)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2 ** 100), st.integers(1, 2 ** 90))
def test_square_roots_of_ratios_round_to_nearest_float32_as_mpmath(num, den):
    import mpmath

    with mpmath.workprec(300):
        exact = mpmath.sqrt(mpmath.mpf(num) / den)
    assert _float32_of_bits(har_features._sqrt_ratio_bits(num, den)) == _mpmath_float32(exact)


def test_rounding_ties_go_to_even():
    # halfway between two float32 values: 2**24 + 1 lies between 2**24 and 2**24 + 2
    assert _float32_of_bits(har_features._ratio_bits(2 ** 24 + 1, 1)) == 2 ** 24
    assert _float32_of_bits(har_features._ratio_bits(2 ** 24 + 3, 1)) == 2 ** 24 + 4
    assert _float32_of_bits(har_features._ratio_bits(-(2 ** 25 + 2), 2)) == -(2 ** 24)
    # sqrt((2**24 + 1)**2 / 4) = 2**23 + 1/2: a tie at 24 bits, to the even 2**23
    assert _float32_of_bits(har_features._sqrt_ratio_bits((2 ** 24 + 1) ** 2, 4)) == 2 ** 23
    assert _float32_of_bits(har_features._sqrt_ratio_bits((2 ** 24 + 3) ** 2, 4)) == 2 ** 23 + 2
    # float32 division and square root of float32 operands, as numpy does them
    rng = np.random.default_rng(1)
    a = rng.integers(-2 ** 24, 2 ** 24, 2000)
    b = rng.integers(1, 2 ** 24, 2000)
    got = [_float32_of_bits(har_features._ratio_bits(int(x), int(y))) for x, y in zip(a, b)]
    assert np.array_equal(np.array(got, dtype=np.float32), a.astype(np.float32) / b.astype(np.float32))
    x = np.abs(a)
    got = [_float32_of_bits(har_features._sqrt_ratio_bits(int(v), 1)) for v in x]
    assert np.array_equal(np.array(got, dtype=np.float32), np.sqrt(x.astype(np.float32)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 3 * 2 ** 30))
def test_magnitudes_round_to_the_nearest_integer(squares):
    assert har_features._rounded_sqrt(squares) == round(math.sqrt(squares)) == int(np.rint(np.sqrt(np.float64(squares))))


def test_out_must_be_a_float32_array():
    with pytest.raises(TypeError, match="out must be array\\('f'\\), got typecode 'd'"):
        har_features.features(array.array("h", range(30)), 3, array.array("d", [0.0] * 51))
