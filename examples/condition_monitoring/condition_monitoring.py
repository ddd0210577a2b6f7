"""Condition monitoring end to end: learn what normal vibration looks like, flag what is not.

1. Simulates (seeded) accelerometer recordings of a shaft (mpyml.vibration): normal operation and
   four faults (imbalance, misalignment, bearing fault, looseness), 1 kHz, float32.
2. Computes features per window of 512 samples with device/cm_features.py, the very file the
   device runs: three band-pass IIR filters (scipy Butterworth sos, run by emliir on the device,
   by mpyml.iir.sosfilt_float32 here) and six FFT band energies (emlfft on the device,
   mpyml.fft.real_spectrum here).
3. Trains StandardScaler + GaussianMixture on windows of normal recordings only, exports the
   pipeline to emlmixture (scaler folded into the model) with the anomaly threshold at the
   `outlier_percentile` percentile of the training scores.
4. Writes the model, the filters' float32 coefficients and the window settings to cm_settings.json,
   replays every held-out recording on the unix port (device/cm_device.py: emliir + emlfft +
   emlmixture) and checks every window: features bit-identical to the host's, score equal to the
   host mirror's bit for bit and within 1e-4 + 2e-6 |score| of scikit-learn's, is_outlier identical.
5. Prints the detection rate per fault type and the false-alarm rate on held-out normal windows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from array import array
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEVICE_DIR = HERE / "device"
sys.path.insert(0, str(DEVICE_DIR))

from cm_features import Features  # noqa: E402
from mpyml import build, device, fft, iir, mixture  # noqa: E402
from mpyml.vibration import CONDITIONS, FS, signal  # noqa: E402

WINDOW = 512
FILTER_BANDS_HZ = [(15, 35), (40, 90), (200, 400)]
FFT_BANDS_HZ = [(0, 20), (20, 40), (40, 80), (80, 160), (160, 320), (320, 500)]
SCORE_ATOL, SCORE_RTOL = 1e-4, 2e-6  # against scikit-learn's score_samples: float32 resolves ~6e-8 of |score|


class MirrorIIR:
    """emliir's float32 filter on the host (mpyml.iir.sosfilt_float32), same calls."""

    def __init__(self, sos):
        self.sos, self.state = iir.float32_sos(sos), None

    def run(self, values):
        y, self.state = iir.sosfilt_float32(self.sos, np.frombuffer(values, dtype=np.float32), self.state)
        np.frombuffer(values, dtype=np.float32)[:] = y
        return values

    def reset(self):
        self.state = None


class MirrorFFT:
    """emlfft.FFT(n).power on the host (mpyml.fft.real_spectrum)."""

    def __init__(self, n):
        self.n = n

    def power(self, x, out):
        np.frombuffer(out, dtype=np.float32)[:] = fft.real_spectrum(np.frombuffer(x, dtype=np.float32), power=True)
        return out


def filters_sos(fs: float = FS) -> list[np.ndarray]:
    import scipy.signal

    return [scipy.signal.butter(2, band, btype="bandpass", fs=fs, output="sos") for band in FILTER_BANDS_HZ]


def fft_bins(n: int = WINDOW, fs: float = FS) -> list[tuple[int, int]]:
    """Per band (lo, hi) Hz the FFT bins k with lo <= k * fs / n < hi."""
    return [(math.ceil(lo * n / fs), math.ceil(hi * n / fs)) for lo, hi in FFT_BANDS_HZ]


def simulate(seed: int, n_normal: int, n_fault: int, seconds: float) -> list[tuple[int, np.ndarray]]:
    """(condition, float32 samples) of n_normal normal recordings, then n_fault per fault."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    plan = [0] * n_normal + [c for c in range(1, len(CONDITIONS)) for _ in range(n_fault)]
    return [(c, signal(c, n, rng).astype(np.float32)) for c in plan]


def host_features(samples: np.ndarray) -> np.ndarray:
    """Features (float32, (n_windows, 9)) of one recording with the host mirrors."""
    features = Features([MirrorIIR(sos) for sos in filters_sos()], MirrorFFT(WINDOW), WINDOW, fft_bins())
    window = array("f", bytes(4 * WINDOW))
    rows = []
    for start in range(0, len(samples) - WINDOW + 1, WINDOW):
        np.frombuffer(window, dtype=np.float32)[:] = samples[start:start + WINDOW]
        rows.append(np.frombuffer(features.compute(window), dtype=np.float32).copy())
    return np.array(rows, dtype=np.float32)


DEVICE_SCRIPT = """
import time, cm_device
feats = []
def on_window(x, score, outlier):
    feats.append(''.join('%%08x' %% b for b in __import__('array').array('I', bytearray(x))))
t0 = time.ticks_us()
results = cm_device.replay(%(settings)r, %(paths)r, on_window)
elapsed = time.ticks_diff(time.ticks_us(), t0)
import array
n = 0
for rows in results:
    for score, outlier in rows:
        print('%%08x' %% array.array('I', bytearray(array.array('f', [score])))[0], int(outlier), feats[n])
        n += 1
print('us', elapsed, n)
"""


def replay_on_device(settings: Path, paths: list[Path]):
    """(scores float32, is_outlier bool, features float32, µs per window) from the unix port."""
    out = device.run(DEVICE_SCRIPT % dict(settings=str(settings), paths=[str(p) for p in paths]), extra_path=[DEVICE_DIR])
    lines = out.strip().splitlines()
    _, elapsed, n = lines[-1].split()
    rows = [line.split() for line in lines[:-1]]
    scores = np.array([int(r[0], 16) for r in rows], dtype=np.uint32).view(np.float32)
    outliers = np.array([r[1] == "1" for r in rows])
    feats = np.array([[int(r[2][i:i + 8], 16) for i in range(0, len(r[2]), 8)] for r in rows], dtype=np.uint32).view(np.float32)
    return scores, outliers, feats, int(elapsed) / max(int(n), 1)


def run(out_dir: Path, seed: int = 1, n_normal: int = 30, n_fault: int = 2, seconds: float = 6.0, n_train: int = 20,
        n_components: int = 2, outlier_percentile: float = 0.5, log=print) -> dict:
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    build.build("emliir", "x64")
    build.build("emlfft", "x64")
    build.build("emlmixture", "x64")
    out_dir = Path(out_dir)
    (out_dir / "recordings").mkdir(parents=True, exist_ok=True)
    recordings = simulate(seed, n_normal, n_fault, seconds)
    features = [host_features(samples) for _, samples in recordings]
    train = list(range(n_train))
    test = list(range(n_train, len(recordings)))
    X_train = np.concatenate([features[i] for i in train])
    pipe = make_pipeline(StandardScaler(), GaussianMixture(n_components, covariance_type="full", random_state=seed))
    pipe.fit(X_train.astype(np.float64))
    stored = mixture.export(pipe, out_dir / "cm_model.txt", X=X_train, outlier_percentile=outlier_percentile)
    filters = [iir.float32_sos(sos).ravel().view(np.uint32).tolist() for sos in filters_sos()]
    settings = out_dir / "cm_settings.json"
    settings.write_text(json.dumps({"window": WINDOW, "fs": FS, "filters": filters, "bins": fft_bins(), "model": "cm_model.txt",
                                    "n_components": n_components, "conditions": list(CONDITIONS)}))
    paths = []
    for i in test:
        paths.append(out_dir / "recordings" / ("%02d_%s.f32" % (i, CONDITIONS[recordings[i][0]])))
        paths[-1].write_bytes(recordings[i][1].tobytes())
    X_test = np.concatenate([features[i] for i in test])
    condition = np.concatenate([[recordings[i][0]] * len(features[i]) for i in test])
    host_scores, host_outliers = stored.score_samples(X_test), stored.is_outlier(X_test)
    sklearn_scores = pipe.score_samples(X_test.astype(np.float64))
    scores, outliers, device_features, us_per_window = replay_on_device(settings, paths)

    result = {
        "n_windows_test": len(X_test),
        "features_identical": device_features.shape == X_test.shape and np.array_equal(device_features.view(np.uint32), X_test.view(np.uint32)),
        "scores_identical": np.array_equal(scores.view(np.uint32), host_scores.view(np.uint32)),
        "outliers_identical": np.array_equal(outliers, host_outliers),
        "max_error_vs_sklearn": float(np.max(np.abs(scores.astype(np.float64) - sklearn_scores))),
        "max_error_normal": float(np.max(np.abs(scores.astype(np.float64) - sklearn_scores)[condition == 0])),
        "within_tolerance": bool(np.all(np.abs(scores.astype(np.float64) - sklearn_scores)
                                        <= SCORE_ATOL + SCORE_RTOL * np.abs(sklearn_scores))),
        "sklearn_decisions_agree": int(np.sum(outliers == (sklearn_scores < stored.threshold))),
        "detection": {CONDITIONS[c]: float(outliers[condition == c].mean()) for c in range(1, len(CONDITIONS))},
        "false_alarm": float(outliers[condition == 0].mean()),
        "us_per_window": us_per_window,
        "threshold": stored.threshold,
        "stored": stored,
    }
    log("trained StandardScaler + GaussianMixture(%d, full) on %d normal windows (%d recordings); threshold %.3f "
        "(%g th percentile of the training scores)" % (n_components, len(X_train), n_train, stored.threshold, outlier_percentile))
    log("held out: %d windows (%d normal recordings, %d per fault)" % (len(X_test), n_normal - n_train, n_fault))
    log("%-14s %s" % ("condition", "windows flagged"))
    for c in range(len(CONDITIONS)):
        mask = condition == c
        log("%-14s %5.1f%% of %d%s" % (CONDITIONS[c], 100 * outliers[mask].mean(), mask.sum(), "  (false alarms)" if c == 0 else ""))
    log("unix port vs host on every window: features bit-identical %s, scores bit-identical to the mirror %s, "
        "is_outlier identical %s; |score - scikit-learn| within %g + %g |score| %s (max %.2g on normal windows, %.2g on "
        "all); %d/%d decisions equal scikit-learn's"
        % (result["features_identical"], result["scores_identical"], result["outliers_identical"], SCORE_ATOL, SCORE_RTOL,
           result["within_tolerance"], result["max_error_normal"], result["max_error_vs_sklearn"],
           result["sklearn_decisions_agree"], len(X_test)))
    log("time per window on the unix port (features + score + is_outlier): %.0f us; model RAM %d B"
        % (us_per_window, stored.ram_bytes()))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "out"), help="output directory (model, filters, recordings)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each recording")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter recordings (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        result = run(Path(args.out), seed=args.seed, n_normal=12, n_train=8, n_fault=1, seconds=3.0)  # too few windows for a good model
    else:
        result = run(Path(args.out), seed=args.seed, seconds=args.seconds)
    ok = result["features_identical"] and result["scores_identical"] and result["outliers_identical"] \
        and result["within_tolerance"]
    return 0 if ok else 1
