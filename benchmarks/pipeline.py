"""Benchmark: a whole Pipeline on the device, StandardScaler + PCA(8) + RandomForest on digits.

One run on the unix port of MicroPython, in one process, contenders interleaved pass by pass
(a pass predicts every one of the 540 test rows from array('f') rows of raw features):

  native pipeline      the mpyml-trees version 3 file (steps section) mpyml.export writes: model.predict(x) on raw
                       features; emltrees runs the scaler and PCA (folded into one matrix) in C,
                       then the forest
  composed             emllinear.Pipeline(steps, forest).predict(x): the steps in emllinear, the
                       forest in emltrees (how steps reach emlneighbors)
  plain MicroPython    the same scaler and PCA written in MicroPython (float lists, loops), feeding emltrees
  bare forest          emltrees alone on rows already transformed: the cost of the forest itself

Reported: best and median µs per prediction over the passes, the speedup of the native
pipeline over the plain-MicroPython preprocessing path (best over best), the native
pipeline's time over the bare forest's, agreement with scikit-learn, heap bytes per
native prediction, and the bytes of each contender's model files.

    python benchmarks/pipeline.py [--quick] [--json PATH] [--passes N]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))

from mpyml import build, device  # noqa: E402
from mpyml.formats import linear as linear_format, trees as trees_format  # noqa: E402

PASSES_NORMAL, PASSES_QUICK = 25, 2
TARGET_SPEEDUP, TARGET_OVER_BARE = 50.0, 2.0

_PLAIN_MODULE = """# StandardScaler + PCA(8) of the benchmark, written out for plain MicroPython
MEAN = {mean!r}
SCALE = {scale!r}
PCA_MEAN = {pca_mean!r}
COMPONENTS = {components!r}


def preprocess(x, z):
    s = [(x[j] - MEAN[j]) / SCALE[j] for j in range(len(MEAN))]
    for i in range(len(COMPONENTS)):
        row = COMPONENTS[i]
        acc = 0.0
        for j in range(len(s)):
            acc += (s[j] - PCA_MEAN[j]) * row[j]
        z[i] = acc
    return z
"""

_SCRIPT = """
import array, gc, time, emllinear, emltrees
import plain_steps
model = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(model, {model_path!r})
steps = emllinear.new(4, 100000)
emllinear.load_model(steps, {steps_path!r})
forest = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(forest, {forest_path!r})
NF, NZ, N = steps.n_features, steps.width, {n_rows}
flat = array.array('f', bytes(4 * N * NF))
with open({x_path!r}, 'rb') as f:
    f.readinto(flat)
rows = [flat[i * NF:(i + 1) * NF] for i in range(N)]
z = array.array('f', bytes(4 * NZ))
transformed = [array.array('f', steps.transform(r, z)) for r in rows]

pipe = emllinear.Pipeline(steps, forest)

def native():
    for x in rows:
        model.predict(x)

def composed():
    for x in rows:
        pipe.predict(x)

def plain():
    for x in rows:
        forest.predict(plain_steps.preprocess(x, z))

def bare():
    for t in transformed:
        forest.predict(t)

print('NATIVE_PRED', [model.predict(x) for x in rows])
print('COMPOSED_PRED', [pipe.predict(x) for x in rows])
print('PLAIN_PRED', [forest.predict(plain_steps.preprocess(x, z)) for x in rows])
times = {{'NATIVE_US': [], 'COMPOSED_US': [], 'PLAIN_US': [], 'BARE_US': []}}
alloc = []
# Pass 0 is untimed: the interpreter allocates a little the first time through this loop itself.
for p in range({passes} + 1):
    for name, run in (('NATIVE_US', native), ('COMPOSED_US', composed), ('PLAIN_US', plain), ('BARE_US', bare)):
        gc.collect()
        before = gc.mem_alloc()
        t0 = time.ticks_us()
        run()
        t1 = time.ticks_us()
        if p == 0:
            continue
        if name == 'NATIVE_US':
            alloc.append(gc.mem_alloc() - before)
        times[name].append(time.ticks_diff(t1, t0) / N)
for name in times:
    print(name, times[name])
print('ALLOC', alloc)
"""


def run(passes: int, tmp: Path) -> dict:
    import mpyml
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)
    X_test = X_test.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), PCA(8, random_state=0),
                         RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1)).fit(X_train, y_train)
    path = tmp / "digits_pipeline.csv"
    stored = mpyml.export(pipe, path)
    # The same steps and forest as separate files, for the composed and bare contenders.
    steps_path, forest_path = tmp / "digits_steps.csv", tmp / "digits_forest.csv"
    linear_format.save(stored.steps, steps_path)
    trees_format.save(stored.model, forest_path)
    scaler, pca = pipe[0], pipe[1]
    plain = tmp / "plain_steps.py"
    plain.write_text(_PLAIN_MODULE.format(mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(),
                                          pca_mean=pca.mean_.tolist(), components=pca.components_.tolist()))
    x_path = tmp / "x.bin"
    x_path.write_bytes(X_test.astype("<f4").tobytes())
    forest = stored.model
    out = device.run(_SCRIPT.format(model_path=str(path), steps_path=str(steps_path), forest_path=str(forest_path),
                                    n_trees=forest.n_trees,
                                    n_nodes=forest.n_nodes, n_leaves=forest.n_leaves, n_rows=len(X_test),
                                    x_path=str(x_path), passes=passes), extra_path=[tmp])
    values = {line.split(" ", 1)[0]: eval(line.split(" ", 1)[1]) for line in out.splitlines() if " " in line}
    sk = np.searchsorted(pipe.classes_, pipe.predict(X_test.astype(np.float64)))
    native, plain_t, bare = values["NATIVE_US"], values["PLAIN_US"], values["BARE_US"]
    composed = values["COMPOSED_US"]
    model_bytes = path.stat().st_size
    steps_bytes = steps_path.stat().st_size
    trees_bytes = forest_path.stat().st_size
    return {
        "n_rows": len(X_test), "passes": passes,
        "native_best_us": min(native), "native_us": statistics.median(native),
        "plain_best_us": min(plain_t), "plain_us": statistics.median(plain_t),
        "bare_best_us": min(bare), "bare_us": statistics.median(bare),
        "composed_best_us": min(composed), "composed_us": statistics.median(composed), "composed_times_us": composed,
        "composed_agrees_native": int(np.sum(np.array(values["COMPOSED_PRED"]) == np.array(values["NATIVE_PRED"]))),
        "speedup": min(plain_t) / min(native), "over_bare": min(native) / min(bare),
        "native_times_us": native, "plain_times_us": plain_t, "bare_times_us": bare,
        "native_agrees_sklearn": int(np.sum(np.array(values["NATIVE_PRED"]) == sk)),
        "plain_agrees_sklearn": int(np.sum(np.array(values["PLAIN_PRED"]) == sk)),
        "native_agrees_mirror": int(np.sum(np.array(values["NATIVE_PRED"]) == stored.predict(X_test))),
        "alloc_bytes_per_pass": values["ALLOC"],
        "model_file_bytes": model_bytes, "steps_file_bytes": steps_bytes, "trees_file_bytes": trees_bytes,
        "plain_py_bytes": plain.stat().st_size,
        "steps_ram_bytes": stored.steps.ram_bytes(), "forest_ram_bytes": forest.ram_bytes(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="%d passes instead of %d" % (PASSES_QUICK, PASSES_NORMAL))
    parser.add_argument("--passes", type=int, help="timed passes")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    passes = args.passes or (PASSES_QUICK if args.quick else PASSES_NORMAL)
    for module in ("emllinear", "emltrees"):
        build.build(module, "x64")
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        r = run(passes, Path(tmp))
    n = r["n_rows"]
    print("digits, StandardScaler + PCA(8) + RandomForestClassifier(n_estimators=10, max_leaf_nodes=100), "
          "unix port, %d test rows, %d passes (best and median µs per prediction)" % (n, passes))
    print()
    print("| contender | µs / prediction (best, median) | agrees with scikit-learn | model files (bytes) |")
    print("|---|---:|---:|---:|")
    print("| native pipeline: emltrees `model.predict(x)`, steps in the model file | %.2f, %.2f | %d/%d | %d (one file) |" % (
        r["native_best_us"], r["native_us"], r["native_agrees_sklearn"], n, r["model_file_bytes"]))
    print("| composed: `emllinear.Pipeline(steps, forest).predict(x)` | %.2f, %.2f | %d/%d (same as native) | %d (steps %d + forest %d) |" % (
        r["composed_best_us"], r["composed_us"], r["composed_agrees_native"], n,
        r["steps_file_bytes"] + r["trees_file_bytes"], r["steps_file_bytes"], r["trees_file_bytes"]))
    print("| plain-MicroPython scaler + PCA feeding emltrees | %.1f, %.1f | %d/%d | %d (.py %d + forest %d) |" % (
        r["plain_best_us"], r["plain_us"], r["plain_agrees_sklearn"], n,
        r["plain_py_bytes"] + r["trees_file_bytes"], r["plain_py_bytes"], r["trees_file_bytes"]))
    print("| bare forest (emltrees on transformed rows) | %.2f, %.2f | — | %d |" % (
        r["bare_best_us"], r["bare_us"], r["trees_file_bytes"]))
    print()
    print("Targets: native pipeline >= %.0fx faster than the plain-MicroPython path: %.0fx (%s); "
          "within %.0fx of the bare forest: %.2fx (%s)" % (
              TARGET_SPEEDUP, r["speedup"], "met" if r["speedup"] >= TARGET_SPEEDUP else "NOT met",
              TARGET_OVER_BARE, r["over_bare"], "met" if r["over_bare"] <= TARGET_OVER_BARE else "NOT met"))
    print("Native pipeline: heap bytes per pass %s; agrees with the numpy mirror on %d/%d rows; device RAM "
          "steps %d B + forest %d B" % (sorted(set(r["alloc_bytes_per_pass"])), r["native_agrees_mirror"], n,
                                         r["steps_ram_bytes"], r["forest_ram_bytes"]))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
