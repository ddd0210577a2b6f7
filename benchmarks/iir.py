"""Benchmark: emliir (mpyml's IIR natmod) against a plain-MicroPython filter loop.

One run of the unix port of MicroPython, one interpreter process. The filter is
scipy.signal.butter(4, [0.1, 0.3], btype='bandpass', output='sos') (an order-4
Butterworth bandpass: 4 second-order sections), the signal 10,000 samples of two
sines and noise in array('f'). Contenders, interleaved round by round:

  emliir float32   filt.run(values): the whole array in one call
  emliir Q15       the same filter from mpyml.iir.quantize_q15, on array('h')
  plain Python     direct form II transposed over the array('f') in place, one
                   stage at a time with coefficients and state in locals (the
                   same algorithm and operation order as emliir's float path)
  ulab             ulab.scipy.signal.sosfilt, when the interpreter has ulab

Reported: microseconds per sample (median of the timed passes, time.ticks_us on
the device), emliir's speed-up over each, and how far each output is from
scipy's float64 sosfilt (relative to the signal's peak). The target is checked
and printed; missing it does not fail the run.

    python benchmarks/iir.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from scipy import signal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exporter"))

from mpyml import build, device, iir  # noqa: E402

N_SAMPLES = 10000
TARGET = 250.0  # emliir float32 at least this many times faster per sample than the plain loop
ROUNDS_NORMAL, ROUNDS_QUICK = 7, 2
NATIVE_PASSES, PLAIN_PASSES = 20, 1

_SCRIPT = """
import array, gc, json, time, emliir
N = {n}
ROUNDS = {rounds}

def load(path, typecode, n):
    a = array.array(typecode, bytes(n * (2 if typecode == 'h' else 4)))
    with open(path, 'rb') as f:
        f.readinto(a)
    return a

x = load({x_path!r}, 'f', N)
xq = load({xq_path!r}, 'h', N)
sos = load({sos_path!r}, 'f', {n_sos})
q15 = load({q15_path!r}, 'h', {n_sos})


def plain_run(coeffs, state, values):
    # Direct form II transposed, stage by stage over the whole array, in place.
    n = len(values)
    for s in range(len(coeffs) // 6):
        b0 = coeffs[6 * s]
        b1 = coeffs[6 * s + 1]
        b2 = coeffs[6 * s + 2]
        a1 = coeffs[6 * s + 4]
        a2 = coeffs[6 * s + 5]
        z1 = state[2 * s]
        z2 = state[2 * s + 1]
        for i in range(n):
            v = values[i]
            y = b0 * v + z1
            z1 = b1 * v - a1 * y + z2
            z2 = b2 * v - a2 * y
            values[i] = y
        state[2 * s] = z1
        state[2 * s + 1] = z2


def timed(fn, source, work, passes):
    # Each pass filters a fresh copy of the signal from the zero state; only fn is timed.
    best = []
    for _ in range(passes):
        work[:] = source
        t0 = time.ticks_us()
        fn(work)
        best.append(time.ticks_diff(time.ticks_us(), t0))
    return best


filt = emliir.new(sos)
filt_q15 = emliir.new_q15(q15)
coeffs = list(sos)
state = [0.0] * (2 * (len(coeffs) // 6))


def run_native(values):
    filt.reset()
    filt.run(values)


def run_q15(values):
    filt_q15.reset()
    filt_q15.run(values)


def run_plain(values):
    for i in range(len(state)):
        state[i] = 0.0
    plain_run(coeffs, state, values)


try:
    from ulab import numpy as unp
    from ulab import scipy as uscipy
    ulab_sos = unp.array([list(sos[6 * s:6 * s + 6]) for s in range(len(sos) // 6)])
    def run_ulab(values):
        return uscipy.signal.sosfilt(ulab_sos, values)
except ImportError:
    run_ulab = None

work = array.array('f', x)
work_q15 = array.array('h', xq)
times = {{'emliir_float32': [], 'emliir_q15': [], 'plain_python': [], 'ulab': []}}
outputs = {{}}
for r in range(ROUNDS):
    gc.collect()
    times['emliir_float32'] += timed(run_native, x, work, {native_passes})
    if r == 0:
        outputs['emliir_float32'] = list(work)
    gc.collect()
    times['emliir_q15'] += timed(run_q15, xq, work_q15, {native_passes})
    if r == 0:
        outputs['emliir_q15'] = list(work_q15)
    gc.collect()
    times['plain_python'] += timed(run_plain, x, work, {plain_passes})
    if r == 0:
        outputs['plain_python'] = list(work)
    if run_ulab is not None:
        ux = unp.array(x)
        gc.collect()
        t0 = time.ticks_us()
        y = run_ulab(ux)
        times['ulab'].append(time.ticks_diff(time.ticks_us(), t0))
        if r == 0:
            outputs['ulab'] = list(y)
print('RESULT ' + json.dumps({{'times_us': times, 'has_ulab': run_ulab is not None}}))
with open({out_path!r}, 'w') as f:
    f.write(json.dumps(outputs))
"""


def make_signal(n: int = N_SAMPLES) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(n)
    return (0.5 * np.sin(0.6 * t) + 0.3 * np.sin(0.05 * t) + 0.1 * rng.normal(size=n)).astype(np.float32)


def run(quick: bool = False) -> dict:
    build.build("emliir", "x64")
    sos = signal.butter(4, [0.1, 0.3], btype="bandpass", output="sos")
    with warnings.catch_warnings():
        warnings.simplefilter("error", iir.Q15Warning)
        q15 = iir.quantize_q15(sos)
    x = make_signal()
    xq = np.round(x.astype(np.float64) * 16000).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {name: tmp / (name + ".bin") for name in ("x", "xq", "sos", "q15")}
        paths["x"].write_bytes(x.astype("<f4").tobytes())
        paths["xq"].write_bytes(xq.astype("<i2").tobytes())
        paths["sos"].write_bytes(iir.float32_sos(sos).astype("<f4").tobytes())
        paths["q15"].write_bytes(q15.astype("<i2").tobytes())
        out_path = tmp / "outputs.json"
        stdout = device.run(_SCRIPT.format(
            n=N_SAMPLES, rounds=ROUNDS_QUICK if quick else ROUNDS_NORMAL, n_sos=sos.size,
            x_path=str(paths["x"]), xq_path=str(paths["xq"]), sos_path=str(paths["sos"]), q15_path=str(paths["q15"]),
            native_passes=NATIVE_PASSES, plain_passes=PLAIN_PASSES, out_path=str(out_path)))
        outputs = json.loads(out_path.read_text())
    result = json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[7:])
    exact = signal.sosfilt(sos, x.astype(np.float64))
    exact_q15 = signal.sosfilt(sos, xq.astype(np.float64))
    peak, peak_q15 = float(np.abs(x).max()), float(np.abs(xq.astype(np.float64)).max())
    contenders = {}
    for name in LABELS:
        times = result["times_us"][name]
        if not times:
            continue
        y = np.asarray(outputs[name], dtype=np.float64)
        error = np.abs(y - (exact_q15 if name == "emliir_q15" else exact)).max() / (peak_q15 if name == "emliir_q15" else peak)
        contenders[name] = {"times_us": times, "us_per_sample": statistics.median(times) / N_SAMPLES,
                            "max_error_vs_scipy": float(error)}
    native = contenders["emliir_float32"]["us_per_sample"]
    ratios = {"float32_vs_" + name: c["us_per_sample"] / native
              for name, c in contenders.items() if name != "emliir_float32"}
    ratios["q15_vs_plain_python"] = contenders["plain_python"]["us_per_sample"] / contenders["emliir_q15"]["us_per_sample"]
    exact_float32 = np.array_equal(np.asarray(outputs["emliir_float32"], dtype=np.float32),
                                   signal.sosfilt(iir.float32_sos(sos), x))
    exact_q15_ref = np.array_equal(np.asarray(outputs["emliir_q15"]), iir.sosfilt_q15(q15, xq)[0])
    return {"n_samples": N_SAMPLES, "n_stages": len(sos), "has_ulab": result["has_ulab"], "contenders": contenders,
            "ratios": ratios, "float32_matches_reference": exact_float32, "q15_matches_reference": exact_q15_ref,
            "target": {"description": "emliir float32 >= %gx faster per sample than plain MicroPython DF2T" % TARGET,
                       "ratio": ratios["float32_vs_plain_python"],
                       "met": ratios["float32_vs_plain_python"] >= TARGET}}


LABELS = {"emliir_float32": "emliir float32 `run` (array('f'))", "emliir_q15": "emliir Q15 `run` (array('h'))",
          "plain_python": "plain MicroPython DF2T loop (array('f'))", "ulab": "ulab `scipy.signal.sosfilt`"}


def report(r: dict) -> str:
    lines = ["emliir benchmark: order-4 Butterworth bandpass (%d second-order sections), %d samples, unix port"
             % (r["n_stages"], r["n_samples"]), "",
             "| contender | µs / sample | emliir float32 is | max error vs scipy float64 (of peak) |",
             "|---|---:|---:|---:|"]
    native = r["contenders"]["emliir_float32"]["us_per_sample"]
    for name, c in r["contenders"].items():
        ratio = "—" if name == "emliir_float32" else "%.0f× faster" % (c["us_per_sample"] / native)
        if name == "emliir_q15":
            ratio = "%.2f× the time" % (c["us_per_sample"] / native)
        lines.append("| %s | %.4f | %s | %.1e |" % (LABELS[name], c["us_per_sample"], ratio, c["max_error_vs_scipy"]))
    if not r["has_ulab"]:
        lines.append("| ulab | — | not in this interpreter | — |")
    lines += ["", "emliir Q15 is %.0f× faster than the plain float loop" % r["ratios"]["q15_vs_plain_python"],
              "float32 output identical to scipy's float32 sosfilt: %s; Q15 output identical to mpyml.iir.sosfilt_q15: %s"
              % (r["float32_matches_reference"], r["q15_matches_reference"]),
              "Target: %s: %.0fx, %s" % (r["target"]["description"], r["target"]["ratio"],
                                          "met" if r["target"]["met"] else "NOT met")]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for tests)")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    r = run(quick=args.quick)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
