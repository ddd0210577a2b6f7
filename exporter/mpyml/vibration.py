"""Synthetic vibration data for condition monitoring (seeded): a shaft's accelerometer signal in
normal operation and with four faults. Used by the emlmixture tests, benchmarks/anomaly.py and
examples/condition_monitoring.

Conditions: 0 normal (shaft tone plus noise), 1 imbalance (strong 1x), 2 misalignment (2x and
3x), 3 bearing fault (impulses ringing a 280 Hz resonance), 4 looseness (many harmonics).
"""

from __future__ import annotations

import numpy as np

CONDITIONS = ("normal", "imbalance", "misalignment", "bearing", "looseness")
FS = 1000.0
SHAFT_HZ = 25.0


def signal(condition: int, n: int, rng: np.random.Generator, fs: float = FS, shaft: float = SHAFT_HZ) -> np.ndarray:
    """n samples (float64, in g) of one stretch of operation in `condition` (an index into
    CONDITIONS) at sample rate fs (Hz): the shaft speed is drawn within 5% of `shaft` (Hz)."""
    if condition not in range(len(CONDITIONS)):
        raise ValueError("condition must be 0..%d, got %r" % (len(CONDITIONS) - 1, condition))
    t = np.arange(n) / fs
    f0 = shaft * rng.uniform(0.95, 1.05)
    x = 0.2 * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6.3)) + 0.05 * rng.standard_normal(n)
    if condition == 1:
        x += rng.uniform(0.5, 0.8) * np.sin(2 * np.pi * f0 * t)
    elif condition == 2:
        x += rng.uniform(0.2, 0.4) * (np.sin(4 * np.pi * f0 * t) + 0.6 * np.sin(6 * np.pi * f0 * t))
    elif condition == 3:
        period = int(fs / rng.uniform(70, 90))
        ring = np.exp(-np.arange(40) / 6.0) * np.sin(2 * np.pi * 280 * np.arange(40) / fs)
        for start in range(rng.integers(0, period), n - 40, period):
            x[start:start + 40] += rng.uniform(0.3, 0.6) * ring
    elif condition == 4:
        for h in range(1, 9):
            x += rng.uniform(0.02, 0.08) * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.3))
    return x


def condition_monitoring(seed: int = 7, n_per_class: int = 150, n: int = 512, fs: float = FS):
    """Features of independent windows of `n` samples, `n_per_class` per condition: RMS, peak, crest
    factor, kurtosis and log10 energies in six bands (0-20-40-80-160-320-500 Hz) of the Hann-windowed
    power spectrum (numpy, float64). Returns X (float32, (5 * n_per_class, 10)) and y (condition)."""
    rng = np.random.default_rng(seed)
    bands = np.array([0, 20, 40, 80, 160, 320, 500])
    freqs = np.fft.rfftfreq(n, 1 / fs)
    rows, labels = [], []
    for label in range(len(CONDITIONS)):
        for _ in range(n_per_class):
            x = signal(label, n, rng, fs)
            spectrum = np.abs(np.fft.rfft(x * np.hanning(n))) ** 2
            energy = [np.log10(spectrum[(freqs >= lo) & (freqs < hi)].sum() + 1e-9) for lo, hi in zip(bands[:-1], bands[1:])]
            rms = np.sqrt(np.mean(x * x))
            peak = np.max(np.abs(x))
            kurt = np.mean((x - x.mean()) ** 4) / np.var(x) ** 2
            rows.append([rms, peak, peak / rms, kurt] + energy)
            labels.append(label)
    return np.asarray(rows, dtype=np.float32), np.asarray(labels)
