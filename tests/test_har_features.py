"""mpy/har_features: the same features from CPython and the unix port, checked against numpy."""

import array
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpyml import device

REPO = Path(__file__).resolve().parent.parent
PORTABLE = [REPO / "mpy" / "npyfile", REPO / "mpy" / "har_features"]
DATA_DIR = REPO.parent / "shared" / "datasets" / "har_exercise_1" / "raw" / "data"
DATASET_FILES = sorted(p for p in DATA_DIR.glob("*.npy") if p.stat().st_size > 1000)

for _d in PORTABLE:
    sys.path.insert(0, str(_d))
import har_features  # noqa: E402

pytestmark = pytest.mark.skipif(not DATASET_FILES, reason="dataset %s not present" % DATA_DIR)

# every window's features as the hex of their float64 bits, and as the float32 array the model reads
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
    return [(str(complete[0]), 100, 50, 150), (str(complete[17]), 100, 50, 7), (str(complete[60]), 128, 32, 300),
            (str(truncated[0]), 100, 50, 99), (str(complete[90]), 50, 50, 3000)]


def test_features_bit_identical_on_cpython_and_unix_port_and_float32_path():
    script = FEATURES_SCRIPT % (_cases(),)
    env = dict(os.environ, PYTHONPATH=":".join(str(p) for p in PORTABLE))
    cpython = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    unix = device.run(script, extra_path=PORTABLE)
    lines = cpython.splitlines()
    assert len(lines) > 2 * 60
    assert unix.splitlines() == lines  # float64 bits equal: well inside the 1e-9 asked for
    for doubles, floats in zip(lines[::2], lines[1::2]):
        values = np.frombuffer(bytes.fromhex(doubles), dtype="<f8")
        # the device's array('f') holds exactly numpy's float32 rounding of the host's features
        assert np.frombuffer(bytes.fromhex(floats), dtype="<f4").tobytes() == values.astype(np.float32).tobytes()


def numpy_features(window: np.ndarray) -> np.ndarray:
    """Independent numpy reference of har_features.features for one (n, axes) integer window."""
    n, n_axes = window.shape
    channels = [window[:, a].astype(np.float64) for a in range(n_axes)]
    channels.append(np.sqrt((window.astype(np.int64) ** 2).sum(axis=1)).astype(np.float64))
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


def test_features_match_an_independent_numpy_computation():
    rng = np.random.default_rng(5)
    windows = [np.load(p)[:100] for p in DATASET_FILES[::25] if p.stat().st_size >= 6000]
    windows += [rng.integers(-32768, 32768, size=(64, 3)), rng.integers(-5, 5, size=(33, 3))]
    for window in windows:
        got = np.array(har_features.features(array.array("h", window.astype(np.int16).ravel().tolist()), 3))
        np.testing.assert_allclose(got, numpy_features(window), rtol=1e-9, atol=1e-6)
    assert len(har_features.feature_names(3)) == har_features.n_features(3) == len(got) == 51


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
