"""Benchmark: emlmixture against the same computation in plain MicroPython, on the unix port.

Data: the synthetic vibration set of mpyml.vibration (10 features per window, 750 rows).
Models: GaussianMixture(4, full) score_samples, GaussianNB predict_proba, EllipticEnvelope
mahalanobis, KMeans(5) predict. Each contender runs in its own `micropython` process: emlmixture
(one call over all rows, and one call per row), and a plain-MicroPython version of the same
arithmetic (parameters as lists, the same formulas). Reported: µs per row (median of timed
passes), the speed-up, agreement with scikit-learn, and RAM: the module after import and the
model after load (gc.mem_alloc differences). The target (>= 100x per row) is printed, not enforced.

    python benchmarks/anomaly.py [--passes N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exporter"))

from mpyml import build, device, mixture  # noqa: E402
from mpyml.formats import mixture as mixture_format  # noqa: E402
from mpyml.vibration import condition_monitoring  # noqa: E402

NATIVE = """
import gc, time, array, json
gc.collect(); m0 = gc.mem_alloc()
import emlmixture
gc.collect(); m1 = gc.mem_alloc()
model = emlmixture.new({d}, {k})
emlmixture.load_model(model, {path!r})
gc.collect(); m2 = gc.mem_alloc()
X = array.array('f', bytes(4 * {n} * {d}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
rows = [X[r * {d}:(r + 1) * {d}] for r in range({n})]
out = array.array('f', bytes(4 * {n} * {width}))
one = array.array('f', bytes(4 * {width}))
def many():
    {many}
def single():
    for x in rows:
        {single}
res = {{'import': m1 - m0, 'load': m2 - m1}}
for name, fn in (('many', many), ('single', single)):
    times = []
    for _ in range({passes}):
        t = time.ticks_us(); fn(); times.append(time.ticks_diff(time.ticks_us(), t))
    times.sort()
    res[name] = times[len(times) // 2] / {n}
res['values'] = [out[i] for i in range(len(out))] if {width} == 1 else []
res['predict'] = [model.predict(x) for x in rows]
print(json.dumps(res))
"""

PLAIN = """
import gc, time, array, json, math
X = array.array('f', bytes(4 * {n} * {d}))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)
rows = [list(X[r * {d}:(r + 1) * {d}]) for r in range({n})]
gc.collect(); m0 = gc.mem_alloc()
P = {params}
gc.collect(); m1 = gc.mem_alloc()
{code}
res = {{'load': m1 - m0}}
times = []
for _ in range({passes}):
    t = time.ticks_us()
    outs = [run(x) for x in rows]
    times.append(time.ticks_diff(time.ticks_us(), t))
times.sort()
res['single'] = times[len(times) // 2] / {n}
res['outs'] = outs
print(json.dumps(res))
"""

CODE = {
    "mixture": """
def run(x):
    best = -1e300; lps = []
    for k in range(len(P['means'])):
        mu = P['means'][k]; u = P['prec'][k]
        c = [x[i] - mu[i] for i in range(len(x))]
        q = 0.0; at = 0
        for j in range(len(x)):
            y = 0.0
            for i in range(j + 1):
                y += c[i] * u[at + i]
            at += j + 1
            q += y * y
        lp = P['consts'][k] - 0.5 * q
        lps.append(lp)
        if lp > best: best = lp
    s = 0.0
    for lp in lps: s += math.exp(lp - best)
    return best + math.log(s)
""",
    "naive_bayes": """
def run(x):
    jll = []
    for k in range(len(P['means'])):
        mu = P['means'][k]; iv = P['inv_var'][k]; s = 0.0
        for i in range(len(x)):
            d = x[i] - mu[i]; s += d * d * iv[i]
        jll.append(P['prior'][k] + (P['norm'][k] - 0.5 * s))
    top = max(jll)
    e = [math.exp(v - top) for v in jll]; t = sum(e)
    return [v / t for v in e]
""",
    "envelope": """
def run(x):
    loc = P['loc']; prec = P['prec']; d = len(x)
    c = [x[i] - loc[i] for i in range(d)]
    total = 0.0
    for j in range(d):
        t = 0.0
        for i in range(d):
            t += c[i] * prec[i][j]
        total += t * c[j]
    return total
""",
    "kmeans": """
def run(x):
    best = 0; bd = 1e300
    for k in range(len(P['centres'])):
        c = P['centres'][k]; q = 0.0
        for i in range(len(x)):
            d = x[i] - c[i]; q += d * d
        if q < bd: bd = q; best = k
    return best
""",
}

CALLS = {  # (method over all rows, per row, width of out)
    "mixture": ("model.score_samples(X, out)", "model.score_samples(x, one)", 1),
    "naive_bayes": ("model.predict_proba(X, out)", "model.predict_proba(x, one)", "k"),
    "envelope": ("model.mahalanobis(X, out)", "model.mahalanobis(x, one)", 1),
    "kmeans": ("model.transform(X, out)", "model.predict(x)", "k"),
}


def _params(stored) -> dict:
    r = [list(map(float, row)) for row in stored.rows]
    k = stored.n_components
    if stored.kind == "mixture":
        return {"means": r[:k], "prec": r[k:2 * k], "consts": r[2 * k]}
    if stored.kind == "naive_bayes":
        return {"means": r[:k], "inv_var": r[k:2 * k], "prior": r[2 * k], "norm": r[2 * k + 1]}
    if stored.kind == "envelope":
        return {"loc": r[0], "prec": r[1:]}
    return {"centres": r[:k]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=9)
    args = ap.parse_args()
    from sklearn.cluster import KMeans
    from sklearn.covariance import EllipticEnvelope
    from sklearn.mixture import GaussianMixture
    from sklearn.naive_bayes import GaussianNB

    build.build("emlmixture", "x64")
    X, y = condition_monitoring()
    X64 = X.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [
            ("GaussianMixture(4, full) score_samples", GaussianMixture(4, covariance_type="full", random_state=0).fit(X),
             lambda e: e.score_samples(X64)),
            ("GaussianNB predict_proba", GaussianNB().fit(X, y), lambda e: e.predict_proba(X64)),
            ("EllipticEnvelope mahalanobis", EllipticEnvelope(random_state=0).fit(X), lambda e: e.mahalanobis(X64)),
            ("KMeans(5) predict", KMeans(5, random_state=0, n_init=3).fit(X), lambda e: e.predict(X)),
        ]
    n, d = X.shape
    print("| model | emlmixture µs/row (one call, all rows) | emlmixture µs/row (call per row) | plain MicroPython µs/row | speed-up per row | agrees with scikit-learn | module RAM after import (B) | model RAM after load (B) | plain params RAM (B) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        x_path = Path(tmp) / "X.bin"
        x_path.write_bytes(X.tobytes())
        for title, est, reference in models:
            stored = mixture.mixture_from_sklearn(est)
            path = Path(tmp) / "model.txt"
            mixture_format.save(stored, path)
            many, single, width = CALLS[stored.kind]
            width = stored.n_components if width == "k" else width
            native = json.loads(device.run(NATIVE.format(d=d, k=stored.n_components, path=str(path), n=n, x_path=str(x_path),
                                                         width=width, many=many, single=single, passes=args.passes)))
            plain = json.loads(device.run(PLAIN.format(n=n, d=d, x_path=str(x_path), params=repr(_params(stored)),
                                                       code=CODE[stored.kind], passes=max(3, args.passes // 3))))
            ref = reference(est)
            if stored.kind == "kmeans":
                agree = "%d/%d" % ((np.array(native["predict"]) == ref).sum(), n)
            elif stored.kind == "naive_bayes":
                agree = "%d/%d predict" % ((est.classes_[np.array(native["predict"])] == est.predict(X64)).sum(), n)
            else:
                err = np.abs(np.array(native["values"]) - ref).max()
                agree = "max abs error %.1e" % err
            print("| %s | %.2f | %.2f | %.1f | %.0fx | %s | %d | %d | %d |" % (
                title, native["many"], native["single"], plain["single"], plain["single"] / native["single"], agree,
                native["import"], native["load"], plain["load"]))


if __name__ == "__main__":
    main()
