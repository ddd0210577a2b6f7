"""Benchmark: gradient-boosted trees in emltrees against generated Python on MicroPython.

One run on the unix port of MicroPython, sklearn's digits dataset (train_test_split(random_state=1):
450 test rows, integer features 0..16) and four boosted models of about the same size on its 10
classes (100 iterations, so 1000 trees each):

  HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=31, early_stopping=False)
  XGBClassifier(n_estimators=100, max_depth=5)                (XGBoost 3.2)
  LGBMClassifier(n_estimators=100, num_leaves=31)             (LightGBM 4.7)
  GradientBoostingClassifier(n_estimators=100, max_depth=3)

and one that m2cgen 0.10 converts to a module MicroPython runs: the same LGBMClassifier on digits as
a binary task (y >= 5: 100 trees); last, that model with one tree, which shows what a call costs
besides the walk.

Contenders, each in its own micropython subprocess:

  emltrees      mpyml.export(model, path) (feature_dtype auto): model.predict per row, and
                model.predict_many over all rows (time per row = total / rows)
  m2cgen        m2cgen 0.10's export_to_python(model), run unchanged; class = argmax of score()
                (where m2cgen cannot convert a model, the table says so)
  plain Python  the same trees as flat lists, a simple walk per tree, float sums per class, argmax

Reported: microseconds per prediction (median over passes), speed ratios, agreement with the
library's predict on the 450 rows, model size on disk (emltrees file vs m2cgen's .py).

    python benchmarks/boosting.py [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trees import ensure_module, micropython_version, run_micropython  # noqa: E402

_COMMON = """
import gc, time, array, json
N_ROWS = {n_rows}
N_FEATURES = {n_features}
REPS = {reps}
X = array.array({typecode!r}, bytes({itemsize} * N_ROWS * N_FEATURES))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)


def bench(fn, rows):
    times = []
    gc.collect()
    for _ in range(REPS):
        t0 = time.ticks_us()
        for r in rows:
            fn(r)
        times.append(time.ticks_diff(time.ticks_us(), t0))
    return times


def report(result):
    print('RESULT ' + json.dumps(result))
"""

_EMLTREES = """
import emltrees
model = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(model, {model_path!r})
rows = [X[i * N_FEATURES:(i + 1) * N_FEATURES] for i in range(N_ROWS)]
pred = [model.predict(r) for r in rows]
many = array.array('H', bytes(2 * N_ROWS))
many_times = []
for _ in range(REPS):
    t0 = time.ticks_us()
    model.predict_many(X, many)
    many_times.append(time.ticks_diff(time.ticks_us(), t0))
report({{'pred': pred, 'pred_many': list(many), 'times_us': bench(model.predict, rows), 'many_times_us': many_times}})
"""

_PYTHON = """
import {module}
predict = {module}.predict
rows = [list(X[i * N_FEATURES:(i + 1) * N_FEATURES]) for i in range(N_ROWS)]
pred = [predict(r) for r in rows]
report({{'pred': pred, 'times_us': bench(predict, rows)}})
"""

_M2CGEN_PREDICT = """

def predict(x):
    s = score(x)
    if isinstance(s, float):
        return int(s > 0)
    return s.index(max(s))
"""


def plain_python_source(forest) -> str:
    """The boosted forest (mpyml.trees.Forest with .boost) as flat lists and a float walk: raw score per
    group from the base, argmax (binary: raw > threshold). Python floats: doubles on the unix port."""
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    for tree in forest.trees:
        base = len(feature)
        roots.append(base)
        for i in range(len(tree.feature)):
            leaf = tree.left[i] < 0
            feature.append(-1 if leaf else int(tree.feature[i]))
            threshold.append(0.0 if leaf else float(tree.threshold[i]))
            left.append(-1 if leaf else base + int(tree.left[i]))
            right.append(-1 if leaf else base + int(tree.right[i]))
            value.append(float(tree.value[i, 0]) if leaf else 0.0)
    b = forest.boost
    return "\n".join([
        "ROOTS = %r" % roots, "GROUPS = %r" % [int(g) for g in b.groups], "BASE = %r" % [float(v) for v in b.base],
        "FEATURE = %r" % feature, "THRESHOLD = %r" % threshold, "LEFT = %r" % left, "RIGHT = %r" % right,
        "VALUE = %r" % value, "LIMIT = %r" % float(b.threshold), "",
        "def predict(x):",
        "    feature, threshold, left, right, value = FEATURE, THRESHOLD, LEFT, RIGHT, VALUE",
        "    raw = list(BASE)",
        "    for t, i in enumerate(ROOTS):",
        "        while left[i] >= 0:",
        "            i = left[i] if x[feature[i]] <= threshold[i] else right[i]",
        "        raw[GROUPS[t]] += value[i]",
        "    if len(raw) == 1:",
        "        return int(raw[0] > LIMIT)",
        "    return raw.index(max(raw))",
        "",
    ])


def median_us(times, n_rows):
    return statistics.median(times) / n_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="timed passes over all test rows (default 3)")
    parser.add_argument("--m2cgen-timeout", type=float, default=600, help="seconds for an m2cgen run (default 600)")
    args = parser.parse_args(argv)
    try:
        import lightgbm
        import m2cgen
        import xgboost
    except ImportError as e:
        print("benchmarks/boosting.py needs m2cgen, xgboost and lightgbm: pip install -e '.[bench,boosting]' (%s)" % e,
              file=sys.stderr)
        return 2
    from sklearn.datasets import load_digits
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    import mpyml

    ensure_module()
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, random_state=1)
    binary = y_train >= 5
    models = {  # name: (model, training targets)
        "HistGradientBoostingClassifier": (HistGradientBoostingClassifier(
            max_iter=100, max_leaf_nodes=31, early_stopping=False, random_state=1), y_train),
        "XGBClassifier": (xgboost.XGBClassifier(n_estimators=100, max_depth=5, random_state=1), y_train),
        "LGBMClassifier": (lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1, random_state=1),
                           y_train),
        "GradientBoostingClassifier": (GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=1),
                                       y_train),
        "LGBMClassifier binary (y >= 5)": (
            lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, verbose=-1, random_state=1), binary),
        # One tree: what a call costs beyond the walk (MicroPython's call, argument and array checks).
        "LGBMClassifier binary, 1 tree": (
            lightgbm.LGBMClassifier(n_estimators=1, num_leaves=31, verbose=-1, random_state=1), binary),
    }
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="mpyml-boost-bench-") as tmp:
        work = Path(tmp)
        for index, (name, (model, target)) in enumerate(models.items()):
            model.fit(X_train.astype(np.float32), target)
            reference = np.searchsorted(model.classes_, model.predict(X_test.astype(np.float32)))
            model_path = work / ("model%d.csv" % index)
            stored = mpyml.export(model, model_path)
            X_dev = stored.cast_features(X_test)
            x_path = work / ("x_%s.bin" % stored.dtype)
            x_path.write_bytes(np.ascontiguousarray(X_dev).astype(X_dev.dtype.newbyteorder("<")).tobytes())
            common = _COMMON.format(n_rows=len(X_dev), n_features=X_dev.shape[1], reps=args.reps, x_path=str(x_path),
                                    typecode="h" if stored.dtype == "int16" else "f", itemsize=X_dev.itemsize)
            result = {"model": name, "dtype": stored.dtype, "trees": stored.n_trees, "nodes": stored.n_nodes,
                      "leaves": stored.n_leaves, "file_bytes": model_path.stat().st_size}
            emltrees = run_micropython("emltrees", common + _EMLTREES.format(
                n_trees=stored.n_trees, n_nodes=stored.n_nodes, n_leaves=stored.n_leaves, model_path=str(model_path)),
                work, "64M")
            result["emltrees_us"] = median_us(emltrees["times_us"], len(X_dev))
            result["emltrees_many_us"] = median_us(emltrees["many_times_us"], len(X_dev))
            result["emltrees_agree"] = int(np.sum(np.array(emltrees["pred"]) == reference))
            result["emltrees_many_agree"] = int(np.sum(np.array(emltrees["pred_many"]) == reference))
            (work / ("plain_%d.py" % index)).write_text(plain_python_source(mpyml.convert(model)))
            plain = run_micropython("plain", common + _PYTHON.format(module="plain_%d" % index), work, "64M")
            result["plain_us"] = median_us(plain["times_us"], len(X_dev))
            result["plain_agree"] = int(np.sum(np.array(plain["pred"]) == reference))
            try:
                source = m2cgen.export_to_python(model) + _M2CGEN_PREDICT
            except Exception as e:  # m2cgen raises plain exceptions for models it does not know
                result["m2cgen"] = "cannot convert: %s: %s" % (type(e).__name__, str(e)[:120])
            else:
                (work / ("m2cgen_%d.py" % index)).write_text(source)
                result["m2cgen_bytes"] = len(source.encode())
                try:
                    m2 = run_micropython("m2cgen", common + _PYTHON.format(module="m2cgen_%d" % index), work, "64M",
                                         timeout=args.m2cgen_timeout)
                    result["m2cgen_us"] = median_us(m2["times_us"], len(X_dev))
                    result["m2cgen_agree"] = int(np.sum(np.array(m2["pred"]) == reference))
                except subprocess.TimeoutExpired:
                    result["m2cgen"] = "its %d-byte module did not finish in %d s on MicroPython" % (
                        len(source.encode()), args.m2cgen_timeout)
                except Exception as e:
                    result["m2cgen"] = "fails on MicroPython: %s" % str(e).strip().splitlines()[-1][:160]
            rows_out.append(result)
            print(result, file=sys.stderr)

    print("MicroPython: %s; 450 digits test rows; %d timed passes" % (micropython_version(), args.reps))
    print()
    print("| model | trees / nodes / leaves | emltrees predict | predict_many per row | m2cgen | plain Python "
          "| vs m2cgen (predict, predict_many) | vs plain | agreement (emltrees, m2cgen, plain) "
          "| file: emltrees / m2cgen .py |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows_out:
        m2 = r.get("m2cgen_us")
        print("| %s (%s) | %d / %d / %d | %.2f µs | %.2f µs | %s | %.0f µs | %s | %.0f× | %d, %s, %d /450 | %d B / %s |" % (
            r["model"], r["dtype"], r["trees"], r["nodes"], r["leaves"], r["emltrees_us"], r["emltrees_many_us"],
            "%.1f µs" % m2 if m2 else r.get("m2cgen", "—"), r["plain_us"],
            "%.0f×, %.0f×" % (m2 / r["emltrees_us"], m2 / r["emltrees_many_us"]) if m2 else "—",
            r["plain_us"] / r["emltrees_us"], r["emltrees_agree"],
            r.get("m2cgen_agree", "—"), r["plain_agree"], r["file_bytes"],
            "%d B" % r["m2cgen_bytes"] if "m2cgen_bytes" in r else "—"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
