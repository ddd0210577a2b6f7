"""Benchmark: emltrees (mpyml's natmod) against generated-Python tree models on MicroPython.

One run on the unix port of MicroPython, sklearn's digits dataset (load_digits,
train_test_split(random_state=1): 450 test rows, integer features 0..16 sent to
the device as int16 unchanged) and RandomForestClassifier(n_estimators=10,
max_leaf_nodes=100, random_state=1). Contenders, each in its own micropython
subprocess:

  emltrees      mpyml.export(..., feature_dtype='int16'): model.predict per row,
                and model.predict_many over all rows (time per row = total / rows)
  m2cgen        m2cgen.export_to_python(rf), run unchanged; class = argmax of score()
  everywhereml  everywhereml's RandomForestClassifier(...).to_micropython(), run unchanged
  plain Python  the same forest as flat lists, a simple tree-walk loop, soft voting, argmax

Reported per contender: microseconds per prediction (median over repetitions of
timing all rows with time.ticks_us on the device), speed ratios, agreement with
sklearn's predict, model size on disk, and RAM after load (gc.mem_alloc() delta
around loading the model or importing the generated module, gc.collect() before
each reading). Targets are checked and reported; missing one does not fail the run.

    python benchmarks/trees.py [--quick] [--json PATH] [--reps N] [--rounds N] [--heapsize 8M] [--collect-each-pass]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_ESTIMATORS, MAX_LEAF_NODES, RANDOM_STATE = 10, 100, 1
# Each contender runs ROUNDS times (rounds interleave the contenders, so a burst of background load
# lands on all of them rather than on one), each run timing REPS passes over all test rows.
REPS_NORMAL, REPS_QUICK = 7, 3
ROUNDS_NORMAL, ROUNDS_QUICK = 5, 1

TARGETS = [
    # (key in ratios / facts, description, comparison, threshold)
    ("single_vs_m2cgen", "emltrees single-row predict >= 60x faster than m2cgen", ">=", 60.0),
    ("single_vs_everywhereml", "emltrees single-row predict >= 20x faster than everywhereml", ">=", 20.0),
    ("many_vs_m2cgen", "emltrees predict_many per row >= 150x faster than m2cgen", ">=", 150.0),
    ("emltrees_agreement", "emltrees agrees with sklearn on 450/450 test rows", "==", 450),
    ("file_vs_emlearn", "emltrees model file <= emlearn's CSV for the same forest (bytes)", "<=", None),
]


# ---------------------------------------------------------------- device scripts

_COMMON = """
import gc, time, array, json
N_ROWS = {n_rows}
N_FEATURES = {n_features}
REPS = {reps}
COLLECT_EACH_PASS = {collect_each_pass}

X = array.array('h', bytes(2 * N_ROWS * N_FEATURES))
with open({x_path!r}, 'rb') as f:
    f.readinto(X)


def ram():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


def time_rows(fn, rows):
    t0 = time.ticks_us()
    for r in rows:
        fn(r)
    return time.ticks_diff(time.ticks_us(), t0)


def bench(fn, rows):
    # By default one gc.collect() before the passes, none between them: a collection sweeps the whole
    # heap and would leave the caches cold for the next pass; allocating contenders pay their own
    # collections. --collect-each-pass collects before every pass instead.
    times = []
    gc.collect()
    for _ in range(REPS):
        if COLLECT_EACH_PASS:
            gc.collect()
        times.append(time_rows(fn, rows))
    return times


def list_rows():
    return [list(X[i * N_FEATURES:(i + 1) * N_FEATURES]) for i in range(N_ROWS)]


def report(result):
    print('RESULT ' + json.dumps(result))
"""

_EMLTREES = """
r0 = ram()
import emltrees
r1 = ram()
model = emltrees.new({n_trees}, {n_nodes}, {n_leaves})
emltrees.load_model(model, {model_path!r})
r2 = ram()

rows = [X[i * N_FEATURES:(i + 1) * N_FEATURES] for i in range(N_ROWS)]
predict = model.predict
pred = [predict(r) for r in rows]
many = array.array('H', bytes(2 * N_ROWS))
model.predict_many(X, many)

single_times = bench(predict, rows)
many_times = []
gc.collect()
for _ in range(REPS):
    if COLLECT_EACH_PASS:
        gc.collect()
    t0 = time.ticks_us()
    model.predict_many(X, many)
    many_times.append(time.ticks_diff(time.ticks_us(), t0))
empty_times = []
for _ in range(REPS):
    t0 = time.ticks_us()
    for r in rows:
        pass
    empty_times.append(time.ticks_diff(time.ticks_us(), t0))

report({{'pred': pred, 'pred_many': list(many), 'times_us': single_times, 'many_times_us': many_times,
        'empty_loop_times_us': empty_times, 'ram_bytes': r2 - r1, 'module_import_ram_bytes': r1 - r0}})
"""

_M2CGEN = """
r0 = ram()
import m2cgen_forest
r1 = ram()

score = m2cgen_forest.score


def predict(x):
    s = score(x)
    return s.index(max(s))


rows = list_rows()
pred = [predict(r) for r in rows]
report({'pred': pred, 'times_us': bench(predict, rows), 'ram_bytes': r1 - r0})
"""

_EVERYWHEREML = """
r0 = ram()
import everywhereml_forest
clf = everywhereml_forest.RandomForestClassifier()
r1 = ram()

predict = clf.predict
rows = list_rows()
pred = [predict(r) for r in rows]
report({'pred': pred, 'times_us': bench(predict, rows), 'ram_bytes': r1 - r0})
"""

_PLAIN = """
r0 = ram()
import plain_forest
r1 = ram()

predict = plain_forest.predict
rows = list_rows()
pred = [predict(r) for r in rows]
report({'pred': pred, 'times_us': bench(predict, rows), 'ram_bytes': r1 - r0})
"""


# ---------------------------------------------------------------- host side

def plain_python_source(rf) -> str:
    """The forest as flat lists (all trees' nodes back to back) and a simple tree walk with soft voting."""
    feature, threshold, left, right, values, roots = [], [], [], [], [], []
    for est in rf.estimators_:
        t = est.tree_
        base = len(feature)
        roots.append(base)
        value = np.asarray(t.value)[:, 0, :]
        for i in range(t.node_count):
            if t.children_left[i] < 0:
                feature.append(-1)
                threshold.append(0.0)
                left.append(-1)
                right.append(-1)
                v = value[i] / value[i].sum()
                values.append([float(p) for p in v])
            else:
                feature.append(int(t.feature[i]))
                threshold.append(float(t.threshold[i]))
                left.append(base + int(t.children_left[i]))
                right.append(base + int(t.children_right[i]))
                values.append(None)
    n_classes = len(rf.classes_)
    return "\n".join([
        "# Plain-Python random forest: %d trees as flat node lists; leaves have left == -1." % len(roots),
        "N_CLASSES = %d" % n_classes,
        "ROOTS = %r" % roots,
        "FEATURE = %r" % feature,
        "THRESHOLD = %r" % threshold,
        "LEFT = %r" % left,
        "RIGHT = %r" % right,
        "VALUES = %r" % values,
        "",
        "",
        "def predict(x):",
        "    feature, threshold, left, right, values = FEATURE, THRESHOLD, LEFT, RIGHT, VALUES",
        "    votes = [0.0] * N_CLASSES",
        "    for i in ROOTS:",
        "        while left[i] >= 0:",
        "            if x[feature[i]] <= threshold[i]:",
        "                i = left[i]",
        "            else:",
        "                i = right[i]",
        "        v = values[i]",
        "        for c in range(N_CLASSES):",
        "            votes[c] += v[c]",
        "    return votes.index(max(votes))",
        "",
    ])


def everywhereml_emulation(rf, X, strict: bool) -> np.ndarray:
    """Host replay of everywhereml's MicroPython template (templates/sklearn/ensemble/py/micro): each tree
    returns (argmax class of its leaf, value.flatten()[that class]), i.e. the class's fraction at the tree's
    root; predict sums these per class and takes the first maximum. strict: `x < t` as generated, else `x <= t`."""
    votes = np.zeros((len(X), len(rf.classes_)))
    rows = np.arange(len(X))
    for est in rf.estimators_:
        t = est.tree_
        value = np.asarray(t.value)
        node = np.zeros(len(X), dtype=np.int64)
        while True:
            inner = t.children_left[node] >= 0
            if not inner.any():
                break
            x = X[rows[inner], t.feature[node[inner]]]
            go_left = x < t.threshold[node[inner]] if strict else x <= t.threshold[node[inner]]
            node[inner] = np.where(go_left, t.children_left[node[inner]], t.children_right[node[inner]])
        cls = value[node, 0, :].argmax(axis=1)
        votes[rows, cls] += value.flatten()[cls]
    return votes.argmax(axis=1)


def same_forest(a, b) -> bool:
    if len(a.estimators_) != len(b.estimators_):
        return False
    for ea, eb in zip(a.estimators_, b.estimators_):
        ta, tb = ea.tree_, eb.tree_
        for name in ("feature", "threshold", "children_left", "children_right", "value"):
            if not np.array_equal(getattr(ta, name), getattr(tb, name)):
                return False
    return True


def run_micropython(name: str, script: str, workdir: Path, heapsize: str, timeout: float = 600) -> dict:
    from mpyml import device

    path = workdir / ("bench_%s.py" % name)
    path.write_text(script)
    env = dict(os.environ, MICROPYPATH=":".join([str(device.module_dir("x64")), str(workdir), ".frozen"]))
    result = subprocess.run([device.micropython_exe(), "-X", "heapsize=%s" % heapsize, str(path)],
                            capture_output=True, text=True, cwd=workdir, env=env, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError("micropython exited with %d:\n%s%s" % (result.returncode, result.stdout[-3000:],
                                                                  result.stderr[-3000:]))
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("micropython printed no RESULT line:\n%s" % result.stdout[-3000:])


def ensure_module() -> None:
    from mpyml import build, device

    target = device.module_dir("x64") / "emltrees.mpy"
    try:
        build.build("emltrees", "x64")
    except build.BuildError as e:
        if not target.is_file():
            raise
        print("warning: could not rebuild emltrees for x64, using the existing %s:\n%s" % (target, e), file=sys.stderr)


def micropython_version() -> str:
    from mpyml import device

    out = subprocess.run([device.micropython_exe(), "-c", "import sys; print(sys.version)"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def summarize(times_us, n_rows) -> dict:
    per = [t / n_rows for t in times_us]
    return {"us_per_prediction": statistics.median(per), "us_min": min(per), "us_max": max(per)}


def fmt_us(v: float) -> str:
    return "%.2f" % v if v < 10 else "%.1f" % v


def fmt_ratio(v) -> str:
    return "—" if v is None else "%.1f×" % v


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (%d runs x %d passes instead of %d x %d)"
                        % (ROUNDS_QUICK, REPS_QUICK, ROUNDS_NORMAL, REPS_NORMAL))
    parser.add_argument("--reps", type=int, help="timed passes over all test rows per micropython run")
    parser.add_argument("--rounds", type=int, help="micropython runs per contender (interleaved)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--heapsize", default="8M", help="micropython -X heapsize (default 8M)")
    parser.add_argument("--collect-each-pass", action="store_true",
                        help="gc.collect() before every timed pass (default: once before all passes)")
    args = parser.parse_args(argv)
    reps = args.reps or (REPS_QUICK if args.quick else REPS_NORMAL)
    rounds = args.rounds or (ROUNDS_QUICK if args.quick else ROUNDS_NORMAL)
    started = time.monotonic()

    try:
        import emlearn
        import m2cgen
        from everywhereml.sklearn.ensemble import RandomForestClassifier as EverywhereRF
    except ImportError as e:
        print("benchmarks/trees.py needs m2cgen, everywhereml and emlearn: pip install -e '.[bench]' emlearn (%s)" % e,
              file=sys.stderr)
        return 2
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    import mpyml

    ensure_module()

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, random_state=RANDOM_STATE)
    params = dict(n_estimators=N_ESTIMATORS, max_leaf_nodes=MAX_LEAF_NODES, random_state=RANDOM_STATE)
    rf = RandomForestClassifier(**params).fit(X_train, y_train)
    X_dev = X_test.astype(np.int16)
    assert np.array_equal(X_dev, X_test), "digits features are integers"
    n_rows, n_features = X_dev.shape
    reference = np.searchsorted(rf.classes_, rf.predict(X_test))  # class indices

    ew = EverywhereRF(**params).fit(X_train, y_train)
    ew_same = same_forest(rf, ew)
    ew_host_agreement = int(np.sum(ew.predict(X_test) == rf.predict(X_test)))
    ew_replay = everywhereml_emulation(ew, X_test, strict=True)
    ew_replay_le = everywhereml_emulation(ew, X_test, strict=False)

    results: dict = {}
    errors: dict = {}
    with tempfile.TemporaryDirectory(prefix="mpyml-bench-") as tmp:
        work = Path(tmp)
        x_path = work / "x_test.bin"
        x_path.write_bytes(X_dev.astype("<i2").tobytes())

        model_path = work / "digits.csv"
        stored = mpyml.export(rf, model_path, feature_dtype="int16")
        hard_path = work / "digits_hard.csv"
        mpyml.export(rf, hard_path, feature_dtype="int16", voting="hard")
        emlearn_path = work / "digits_emlearn.csv"
        emlearn.convert(rf, method="loadable", dtype="int16_t").save(file=str(emlearn_path), name="m", format="csv")

        sources = {
            "m2cgen": m2cgen.export_to_python(rf),
            "everywhereml": ew.to_micropython(),
            "plain_python": plain_python_source(rf),
        }
        module_names = {"m2cgen": "m2cgen_forest", "everywhereml": "everywhereml_forest", "plain_python": "plain_forest"}
        for name, src in sources.items():
            (work / (module_names[name] + ".py")).write_text(src)

        common = _COMMON.format(n_rows=n_rows, n_features=n_features, reps=reps, x_path=str(x_path),
                                collect_each_pass=bool(args.collect_each_pass))
        scripts = {
            "emltrees": common + _EMLTREES.format(n_trees=stored.n_trees, n_nodes=stored.n_nodes,
                                                  n_leaves=stored.n_leaves, model_path=str(model_path)),
            "m2cgen": common + _M2CGEN,
            "everywhereml": common + _EVERYWHEREML,
            "plain_python": common + _PLAIN,
        }
        runs: dict = {name: [] for name in scripts}
        for _ in range(rounds):
            for name, script in scripts.items():
                if name in errors:
                    continue
                try:
                    runs[name].append(run_micropython(name, script, work, args.heapsize))
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    errors[name] = str(e)
                    print("error: %s failed on micropython:\n%s" % (name, e), file=sys.stderr)
        for name, name_runs in runs.items():
            if name in errors:
                continue
            merged = dict(name_runs[0])
            for key in ("times_us", "many_times_us", "empty_loop_times_us"):
                if key in merged:
                    merged[key] = [t for run in name_runs for t in run[key]]
            merged["ram_bytes_all_runs"] = [run["ram_bytes"] for run in name_runs]
            if any(run["pred"] != merged["pred"] for run in name_runs):
                errors[name] = "predictions differ between runs"
                continue
            results[name] = merged

        sizes = {"emltrees": model_path.stat().st_size}
        for name, src in sources.items():
            sizes[name] = len(src.encode())
        emlearn_bytes = emlearn_path.stat().st_size
        hard_bytes = hard_path.stat().st_size

    contenders: dict = {}
    for name, res in results.items():
        pred = np.asarray(res["pred"])
        entry = summarize(res["times_us"], n_rows)
        entry.update(agreement=int(np.sum(pred == reference)), n_rows=n_rows, file_bytes=sizes[name],
                     ram_bytes=int(res["ram_bytes"]), ram_bytes_all_runs=res["ram_bytes_all_runs"],
                     times_us=res["times_us"])
        if name == "emltrees":
            many = summarize(res["many_times_us"], n_rows)
            entry.update(us_per_row_many=many["us_per_prediction"], us_many_min=many["us_min"], us_many_max=many["us_max"],
                         many_times_us=res["many_times_us"],
                         agreement_many=int(np.sum(np.asarray(res["pred_many"]) == reference)),
                         module_import_ram_bytes=int(res["module_import_ram_bytes"]),
                         predicted_ram_bytes=stored.ram_bytes(),
                         empty_loop_us_per_row=statistics.median(res["empty_loop_times_us"]) / n_rows,
                         hard_voting_file_bytes=hard_bytes, n_nodes=stored.n_nodes, n_leaves=stored.n_leaves)
        if name == "everywhereml":
            entry.update(host_replay_matches_device=int(np.sum(ew_replay == pred)),
                         replay_agreement_with_le=int(np.sum(ew_replay_le == reference)))
        contenders[name] = entry

    ratios: dict = {}
    eml = contenders.get("emltrees")
    for other in ("m2cgen", "everywhereml", "plain_python"):
        if eml and other in contenders:
            ratios["single_vs_" + other] = contenders[other]["us_per_prediction"] / eml["us_per_prediction"]
            ratios["many_vs_" + other] = contenders[other]["us_per_prediction"] / eml["us_per_row_many"]

    facts = dict(ratios)
    if eml:
        facts["emltrees_agreement"] = eml["agreement"]
        facts["file_vs_emlearn"] = eml["file_bytes"]
    targets = []
    for key, text, op, threshold in TARGETS:
        if key == "file_vs_emlearn":
            threshold = emlearn_bytes
        value = facts.get(key)
        if value is None:
            met = None
        elif op == ">=":
            met = value >= threshold
        elif op == "<=":
            met = value <= threshold
        else:
            met = value == threshold
        targets.append({"key": key, "target": text, "op": op, "threshold": threshold, "value": value, "met": met})

    mp_version = micropython_version()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    report = {
        "dataset": "sklearn load_digits, train_test_split(random_state=1), %d test rows x %d int16 features" % (n_rows, n_features),
        "model": "RandomForestClassifier(n_estimators=%d, max_leaf_nodes=%d, random_state=%d)" % (N_ESTIMATORS, MAX_LEAF_NODES, RANDOM_STATE),
        "micropython": mp_version,
        "heapsize": args.heapsize,
        "load_average_1min_after": load[0] if load else None,
        "cpu_count": os.cpu_count(),
        "repetitions": reps * rounds,
        "rounds": rounds,
        "n_rows": n_rows,
        "contenders": contenders,
        "emlearn_csv_bytes": emlearn_bytes,
        "everywhereml_same_forest_as_sklearn": ew_same,
        "everywhereml_host_agreement": ew_host_agreement,
        "ratios": ratios,
        "targets": targets,
        "errors": errors,
    }
    print_report(report)
    print("\n(benchmark took %.1f s)" % (time.monotonic() - started))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if errors else 0


def print_report(r: dict) -> None:
    c = r["contenders"]
    n = r["n_rows"]
    print("# emltrees benchmark on the MicroPython unix port\n")
    print("- dataset: %s" % r["dataset"])
    print("- model: %s" % r["model"])
    print("- micropython: %s, -X heapsize=%s" % (r["micropython"], r["heapsize"]))
    if r.get("load_average_1min_after") is not None:
        print("- host: %s CPUs, 1-minute load average %.2f after the run (other load skews the timings)"
              % (r["cpu_count"], r["load_average_1min_after"]))
    print("- timing: median of %d passes over all %d rows (%d micropython run(s) per contender, interleaved; "
          "time.ticks_us on the device); range = min..max per pass\n" % (r["repetitions"], n, r["rounds"]))
    print("| contender | µs / prediction (range) | emltrees single-row is | emltrees predict_many is "
          "| agreement with sklearn | model size on disk (bytes) | RAM after load (bytes) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    eml = c.get("emltrees")
    if eml:
        print("| emltrees `predict` (one row per call) | %s (%s..%s) | — | — | %d/%d | %d (model file) | %d |"
              % (fmt_us(eml["us_per_prediction"]), fmt_us(eml["us_min"]), fmt_us(eml["us_max"]),
                 eml["agreement"], n, eml["file_bytes"], eml["ram_bytes"]))
        print("| emltrees `predict_many` (per row) | %s (%s..%s) | — | — | %d/%d | same file | same |"
              % (fmt_us(eml["us_per_row_many"]), fmt_us(eml["us_many_min"]), fmt_us(eml["us_many_max"]),
                 eml["agreement_many"], n))
    labels = {"m2cgen": "m2cgen 0.10.0 `export_to_python`", "everywhereml": "everywhereml 0.2.40 `to_micropython`",
              "plain_python": "plain-Python tree walk (flat lists)"}
    for name, label in labels.items():
        if name not in c:
            print("| %s | failed: see stderr | | | | | |" % label)
            continue
        e = c[name]
        print("| %s | %s (%s..%s) | %s faster | %s faster | %d/%d | %d (.py source) | %d |"
              % (label, fmt_us(e["us_per_prediction"]), fmt_us(e["us_min"]), fmt_us(e["us_max"]),
                 fmt_ratio(r["ratios"].get("single_vs_" + name)), fmt_ratio(r["ratios"].get("many_vs_" + name)),
                 e["agreement"], n, e["file_bytes"], e["ram_bytes"]))
    print("| emlearn 0.23.2 loadable CSV (size only) | — | — | — | — | %d (CSV) | — |" % r["emlearn_csv_bytes"])

    print("\nNotes:")
    if eml:
        print("- emltrees: %d decision nodes, %d shared leaves; mpyml's predicted model block is %d bytes "
              "(RAM column adds the model object); importing the emltrees module itself took %d bytes "
              "(native code, once per program, not in the RAM column)."
              % (eml["n_nodes"], eml["n_leaves"], eml["predicted_ram_bytes"], eml["module_import_ram_bytes"]))
        print("- the Python `for` loop alone costs %.3f µs per row; it is included in every single-row time."
              % eml["empty_loop_us_per_row"])
        print("- emlearn's CSV stores hard-voting leaves (class index per leaf); our soft-voting file stores class weights. "
              "Our hard-voting file for the same forest: %d bytes." % eml["hard_voting_file_bytes"])
    print("- generated code (m2cgen, everywhereml, plain) is run unchanged, imported from .py (compiled on import: "
          "the RAM column includes its bytecode); its rows are Python lists of ints, emltrees gets array('h') rows.")
    print("- everywhereml trains sklearn's own RandomForestClassifier: forest identical to ours: %s; its sklearn "
          "predict agrees %d/%d. Its MicroPython template is not sklearn's algorithm: each leaf returns "
          "(argmax class, that class's fraction at the tree's *root*) and predict sums those as votes "
          "(a weighted hard vote), and splits test `x < threshold` instead of `x <= threshold`."
          % ("yes" if r["everywhereml_same_forest_as_sklearn"] else "NO", r["everywhereml_host_agreement"], n))
    if "everywhereml" in c:
        e = c["everywhereml"]
        print("  A host replay of that template matches the device's everywhereml predictions on %d/%d rows; "
              "with `<=` instead of `<` it would agree with sklearn on %d/%d (the rest is the voting rule)."
              % (e["host_replay_matches_device"], n, e["replay_agreement_with_le"], n))
    print("- m2cgen, everywhereml and plain Python allocate while predicting (lists, and every float result is a heap "
          "object on this port), so their times include the garbage collections they cause (one gc.collect() before "
          "the passes, none between them: steady state) and depend on -X heapsize; emltrees' predict does not allocate.")

    print("\nTargets:")
    for t in r["targets"]:
        if t["met"] is None:
            status, value = "NOT MEASURED", "n/a"
        else:
            status = "MET   " if t["met"] else "MISSED"
            v = t["value"]
            if t["key"].startswith(("single_", "many_")):
                value = "%.1f×" % v
            elif t["key"] == "emltrees_agreement":
                value = "%d/%d" % (v, n)
            else:
                value = "%d bytes vs emlearn %d bytes" % (v, t["threshold"])
        print("- [%s] %s: %s" % (status, t["target"], value))
    for name, err in r["errors"].items():
        print("\nERROR %s: %s" % (name, err.splitlines()[0] if err else ""))


if __name__ == "__main__":
    sys.exit(main())
