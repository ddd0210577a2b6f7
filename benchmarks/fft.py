"""Benchmark: emlfft (mpyml's natmod) against a plain-MicroPython radix-2 FFT.

One run on the unix port of MicroPython, n = 512 and 1024 (--sizes to change),
random float32 input (seeded). Contenders, all in one micropython process per size:

  emlfft run       fft.run(real, imag) on array('f'): timed as pairs of
                   fft.run + fft.inverse (the pair returns the input, so values
                   stay bounded); per transform = pair time / 2, which charges
                   run with the inverse's extra 1/n scaling pass
  emlfft power     fft.power(x, out): power spectrum of n real samples (x is
                   only read, so calls repeat on the same input)
  plain            a plain-MicroPython iterative radix-2 decimation-in-time FFT
                   over array('f') with precomputed twiddle (cos, sin) and
                   bit-reversal tables, each transform on a fresh copy of the input
                   (copy outside the timing)
  ulab             ulab.numpy.fft.fft, when the interpreter has ulab (this one
                   is checked with `import ulab`)

Reported: microseconds per transform (median over rounds), ratios, and the
largest error of every contender against numpy.fft.fft / rfft relative to
n * max|x| (the issue's parity bound is 1e-5). Targets are printed; missing
one does not fail the run.

    python benchmarks/fft.py [--quick] [--json PATH] [--sizes 512 1024]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exporter"))

from mpyml import build, device  # noqa: E402

SIZES = (512, 1024)
TARGET_RATIO = 400.0
PARITY_BOUND = 1e-5
SEED = 7
# (native pairs per round, plain transforms per round, rounds)
REPS_NORMAL = (400, 3, 15)
REPS_QUICK = (20, 1, 2)

_SCRIPT = """
import array, gc, json, math, time
N = {n}
NATIVE_REPS, PLAIN_REPS, ROUNDS = {reps}
x0 = array.array('f', bytes(4 * N))
with open({x_path!r}, 'rb') as f:
    f.readinto(x0)
zeros = array.array('f', bytes(4 * N))

# ---- emlfft
import emlfft
fft = emlfft.FFT(N)
re = array.array('f', x0)
im = array.array('f', zeros)
fft.run(re, im)
native_re, native_im = list(re), list(im)
spectrum = array.array('f', bytes(4 * (N // 2 + 1)))
fft.power(x0, spectrum)
native_power = list(spectrum)
run, inverse, power = fft.run, fft.inverse, fft.power


def time_native():
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(NATIVE_REPS):
        run(re, im)
        inverse(re, im)
    return time.ticks_diff(time.ticks_us(), t0) / (2 * NATIVE_REPS)


def time_power():
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(NATIVE_REPS):
        power(x0, spectrum)
    return time.ticks_diff(time.ticks_us(), t0) / NATIVE_REPS


def allocated():
    gc.collect()
    before = gc.mem_alloc()
    run(re, im)
    inverse(re, im)
    power(x0, spectrum)
    return gc.mem_alloc() - before


# ---- plain MicroPython: iterative radix-2 decimation in time, precomputed tables
COS = array.array('f', [math.cos(2 * math.pi * k / N) for k in range(N // 2)])
SIN = array.array('f', [math.sin(2 * math.pi * k / N) for k in range(N // 2)])
BITS = len(bin(N)) - 3


def reversed_bits(i):
    r = 0
    for _ in range(BITS):
        r = (r << 1) | (i & 1)
        i >>= 1
    return r


REV = array.array('H', [reversed_bits(i) for i in range(N)])


def plain_fft(re, im, n, cos_t, sin_t, rev):
    for i in range(n):
        j = rev[i]
        if i < j:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    size = 2
    while size <= n:
        half = size >> 1
        step = n // size
        for start in range(0, n, size):
            k = 0
            for a in range(start, start + half):
                b = a + half
                c = cos_t[k]
                s = sin_t[k]
                br = re[b]
                bi = im[b]
                tr = br * c + bi * s
                ti = bi * c - br * s
                ar = re[a]
                ai = im[a]
                re[b] = ar - tr
                im[b] = ai - ti
                re[a] = ar + tr
                im[a] = ai + ti
                k += step
        size <<= 1


pre = array.array('f', x0)
pim = array.array('f', zeros)
plain_fft(pre, pim, N, COS, SIN, REV)
plain_re, plain_im = list(pre), list(pim)


def time_plain():
    total = 0
    for _ in range(PLAIN_REPS):
        pre[:] = x0
        pim[:] = zeros
        gc.collect()
        t0 = time.ticks_us()
        plain_fft(pre, pim, N, COS, SIN, REV)
        total += time.ticks_diff(time.ticks_us(), t0)
    return total / PLAIN_REPS


# ---- ulab, when this interpreter has it
ulab_re = ulab_im = None
try:
    from ulab import numpy as unp
except ImportError:
    unp = None
if unp is not None:
    ua = unp.array(x0)
    ur, ui = unp.fft.fft(ua)
    ulab_re, ulab_im = list(ur), list(ui)


def time_ulab():
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(NATIVE_REPS):
        unp.fft.fft(ua)
    return time.ticks_diff(time.ticks_us(), t0) / NATIVE_REPS


# Rounds interleave the contenders, so a burst of background load lands on all of them.
times = {{'native_us': [], 'power_us': [], 'plain_us': [], 'ulab_us': [] if unp is not None else None}}
for _ in range(ROUNDS):
    times['native_us'].append(time_native())
    times['power_us'].append(time_power())
    times['plain_us'].append(time_plain())
    if unp is not None:
        times['ulab_us'].append(time_ulab())

result = {{'native': [native_re, native_im], 'native_power': native_power, 'plain': [plain_re, plain_im],
          'ulab': [ulab_re, ulab_im] if ulab_re is not None else None, 'native_alloc_bytes': allocated()}}
result.update(times)
print('RESULT ' + json.dumps(result))
"""


def _error(got, want, scale: float) -> float:
    return float(np.max(np.abs(np.asarray(got) - want)) / scale)


def run_size(n: int, reps, tmp: Path) -> dict:
    rng = np.random.default_rng(SEED + n)
    x = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    x_path = tmp / ("x%d.bin" % n)
    x_path.write_bytes(x.astype("<f4").tobytes())
    out = device.run(_SCRIPT.format(n=n, reps=reps, x_path=str(x_path)))
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    r = json.loads(line[len("RESULT "):])
    want = np.fft.fft(x.astype(np.float64))
    scale = n * float(np.max(np.abs(x)))
    errors = {
        "emlfft run": _error(np.array(r["native"][0]) + 1j * np.array(r["native"][1]), want, scale),
        "emlfft power": _error(np.sqrt(np.maximum(r["native_power"], 0)), np.abs(np.fft.rfft(x.astype(np.float64))), scale),
        "plain": _error(np.array(r["plain"][0]) + 1j * np.array(r["plain"][1]), want, scale),
    }
    if r["ulab"] is not None:
        errors["ulab"] = _error(np.array(r["ulab"][0]) + 1j * np.array(r["ulab"][1]), want, scale)
    med = {k: (statistics.median(r[k]) if r[k] else None) for k in ("native_us", "power_us", "plain_us", "ulab_us")}
    ratios = {"plain_vs_run": med["plain_us"] / med["native_us"], "plain_vs_power": med["plain_us"] / med["power_us"]}
    if med["ulab_us"]:
        ratios["ulab_vs_run"] = med["ulab_us"] / med["native_us"]
    return {"n": n, "us": med, "times_us": {k: r[k] for k in ("native_us", "power_us", "plain_us", "ulab_us")},
            "ratios": ratios, "errors": errors, "native_alloc_bytes": r["native_alloc_bytes"],
            "ulab_available": r["ulab"] is not None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions: checks the run, not the speed")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)
    build.build("emlfft", "x64")
    reps = REPS_QUICK if args.quick else REPS_NORMAL
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_size(n, reps, Path(tmp)) for n in args.sizes]

    print("emlfft vs plain MicroPython on the unix port (%s), median of %d rounds%s"
          % (device.micropython_exe(), reps[2], " (--quick: timings not meaningful)" if args.quick else ""))
    print()
    print("| n | contender | µs / transform | emlfft `run` is | max error / (n·max|x|) |")
    print("|---:|---|---:|---:|---:|")
    for r in results:
        us, ratios, errors = r["us"], r["ratios"], r["errors"]
        print("| %d | emlfft `run` (complex, in place) | %.2f | — | %.1e |" % (r["n"], us["native_us"], errors["emlfft run"]))
        print("| %d | emlfft `power` (real input, n/2+1 bins) | %.2f | — | %.1e |" % (r["n"], us["power_us"], errors["emlfft power"]))
        print("| %d | plain MicroPython radix-2 | %.0f | %.0f× faster | %.1e |" % (r["n"], us["plain_us"], ratios["plain_vs_run"], errors["plain"]))
        if r["ulab_available"]:
            print("| %d | ulab.numpy.fft.fft | %.2f | %.1f× faster | %.1e |" % (r["n"], us["ulab_us"], ratios["ulab_vs_run"], errors["ulab"]))
        else:
            print("| %d | ulab | — (not in this interpreter) | — | — |" % r["n"])
    print()
    targets = []
    for r in results:
        met = r["ratios"]["plain_vs_run"] >= TARGET_RATIO
        targets.append({"n": r["n"], "ratio": r["ratios"]["plain_vs_run"], "met": met})
    print("Targets: emlfft run >= %.0fx faster than the plain-MicroPython FFT: %s" % (TARGET_RATIO, ", ".join(
        "n=%d %.0fx %s" % (t["n"], t["ratio"], "met" if t["met"] else "NOT met") for t in targets)))
    worst = max(max(r["errors"].values()) for r in results)
    print("Parity: largest error of emlfft / (n·max|x|) %.1e (bound %.0e); heap allocated by run+inverse+power: %s bytes"
          % (max(max(r["errors"]["emlfft run"], r["errors"]["emlfft power"]) for r in results), PARITY_BOUND,
             ", ".join(str(r["native_alloc_bytes"]) for r in results)))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "targets": targets, "target_ratio": TARGET_RATIO,
                                               "worst_error": worst, "quick": args.quick}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
