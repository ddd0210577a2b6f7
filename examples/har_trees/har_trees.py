"""Human activity recognition with a random forest: train on the PC, run on the device.

    python examples/har_trees/run.py [--config config.yaml] [--data-dir DIR] [--out DIR] [--window N] [--hop N]

Reads the recordings with the portable reader (mpy/npyfile), cuts windows and computes
features with the portable module the device runs (mpy/har_features), holds out whole
recordings, grid-searches the forest with GroupKFold by recording, reports macro F1 and a
confusion matrix on the held-out recordings, exports the model with mpyml.export, then
replays the held-out raw .npy recordings on the unix port (reader + features + emltrees,
examples/har_trees/device/har_device.py) and checks that every window's class equals the host's.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PORTABLE_DIRS = [REPO / "mpy" / "npyfile", REPO / "mpy" / "har_features", HERE / "device"]
for _d in PORTABLE_DIRS[:2]:
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

import har_features  # noqa: E402  (portable: the same file runs on the device)
import npyfile  # noqa: E402


@dataclass
class Recording:
    name: str
    path: Path
    label: str
    values: object  # array.array of n_rows * n_axes integers, interleaved
    n_rows: int
    truncated: bool


def load_config(path, data_dir=None, window=None, hop=None) -> dict:
    import yaml

    path = Path(path).resolve()
    with open(path) as f:
        config = yaml.safe_load(f)
    dataset = config["dataset"]
    for key in ("data_dir", "labels_csv"):
        if dataset.get(key):
            dataset[key] = str((path.parent / dataset[key]).resolve())
    if data_dir is not None:
        dataset["data_dir"] = str(Path(data_dir).resolve())
    if window is not None:
        config["window"] = window
    if hop is not None:
        config["hop"] = hop
    for key in ("data_columns", "classes", "samplerate", "window", "hop", "grid"):
        if key not in config:
            raise ValueError("%s: missing '%s'" % (path, key))
    if not 1 <= config["hop"] <= config["window"]:
        raise ValueError("%s: need 1 <= hop <= window, got window %s, hop %s" % (path, config["window"], config["hop"]))
    return config


def recording_labels(config) -> dict:
    """{file name: label} from the labels CSV, or from each file name by label_pattern."""
    dataset = config["dataset"]
    data_dir = Path(dataset["data_dir"])
    labels = {}
    if dataset.get("labels_csv"):
        pattern = re.compile(dataset["file_pattern"])
        with open(dataset["labels_csv"], newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                match = pattern.search(row[dataset["file_column"]])
                if not match:
                    raise ValueError("%s line %d: %r does not match file_pattern %r" % (
                        dataset["labels_csv"], line, row[dataset["file_column"]], dataset["file_pattern"]))
                labels[match.group(1)] = row[dataset["label_column"]]
    else:
        pattern = re.compile(dataset["label_pattern"])
        for path in sorted(data_dir.glob("*.npy")):
            match = pattern.search(path.name)
            if match:
                labels[path.name] = match.group(1)
    return labels


def load_recordings(config, log=print) -> list[Recording]:
    """Labelled recordings of a wanted class with at least one whole window; truncated files keep what they hold."""
    data_dir = Path(config["dataset"]["data_dir"])
    n_axes = len(config["data_columns"])
    recordings = []
    skipped = {"unlabelled": 0, "other class": 0, "shorter than a window": 0}
    labels = recording_labels(config)
    for path in sorted(data_dir.glob("*.npy")):
        label = labels.get(path.name)
        if label is None:
            skipped["unlabelled"] += 1
            continue
        if label not in config["classes"]:
            skipped["other class"] += 1
            continue
        with npyfile.Reader(str(path), allow_truncated=True) as reader:
            if len(reader.shape) != 2 or reader.shape[1] != n_axes:
                raise ValueError("%s: shape %s, expected (n, %d) for data_columns %s" % (
                    path, reader.shape, n_axes, config["data_columns"]))
            if reader.fortran_order:
                raise ValueError("%s: Fortran-order recordings are not supported" % path)
            truncated = reader.truncated
        _, values = npyfile.load(str(path), allow_truncated=True)
        n_rows = len(values) // n_axes
        if n_rows < config["window"]:
            skipped["shorter than a window"] += 1
            continue
        recordings.append(Recording(path.name, path, label, values[:n_rows * n_axes], n_rows, truncated))
    log("recordings: %d used (%d truncated, read up to their last whole row); skipped %s" % (
        len(recordings), sum(r.truncated for r in recordings), ", ".join("%d %s" % (v, k) for k, v in skipped.items())))
    return recordings


def window_features(recordings, config):
    """X (float64 features, one row per window), y (class indices), groups (recording names), per-recording window counts."""
    n_axes = len(config["data_columns"])
    X, y, groups, counts = [], [], [], []
    for rec in recordings:
        rows = har_features.windows(rec.values, config["window"], config["hop"], n_axes)
        X.extend(rows)
        y.extend([config["classes"].index(rec.label)] * len(rows))
        groups.extend([rec.name] * len(rows))
        counts.append(len(rows))
    return np.array(X, dtype=np.float64), np.array(y), np.array(groups), counts


def held_out_split(y, groups, config, seed):
    """Train and test indices: one fold of StratifiedGroupKFold, so whole recordings are held out and every class is tested."""
    from sklearn.model_selection import StratifiedGroupKFold

    split = config.get("split", {})
    folds = StratifiedGroupKFold(n_splits=split.get("test_folds", 4), shuffle=True, random_state=seed)
    return next(folds.split(np.zeros(len(y)), y, groups))


def train(X, y, groups, config, seed, log=print):
    from sklearn import ensemble
    from sklearn.model_selection import GridSearchCV, GroupKFold

    model = config.get("model", {})
    split = config.get("split", {})
    estimator_class = getattr(ensemble, model.get("estimator", "RandomForestClassifier"))
    estimator = estimator_class(random_state=seed, class_weight=model.get("class_weight"))
    search = GridSearchCV(estimator, config["grid"], scoring="f1_macro", cv=GroupKFold(n_splits=split.get("cv_folds", 4)),
                          n_jobs=config.get("n_jobs", 1))
    search.fit(X, y, groups=groups)
    log("grid search (seed %d): %d candidates x %d folds, best %s, cross-validated macro F1 %.3f" % (seed, 
        len(search.cv_results_["params"]), search.n_splits_, search.best_params_, search.best_score_))
    return search


def export(estimator, config, out_dir: Path):
    import mpyml

    model = config.get("model", {})
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "har_model.csv"
    stored = mpyml.export(estimator, model_path, feature_dtype=model.get("feature_dtype", "float32"),
                          voting=model.get("voting", "soft"))
    settings = {
        "model": model_path.name, "window": config["window"], "hop": config["hop"],
        "n_axes": len(config["data_columns"]), "samplerate": config["samplerate"],
        "classes": list(config["classes"]), "data_columns": list(config["data_columns"]),
        "n_trees": stored.n_trees, "n_nodes": stored.n_nodes, "n_leaves": stored.n_leaves,
    }
    settings_path = out_dir / "har_model.json"
    settings_path.write_text(json.dumps(settings, indent=1) + "\n")
    return stored, model_path, settings_path


_REPLAY_SCRIPT = """
import json, har_device
results, times = har_device.replay({settings!r}, {paths!r}, timing=True)
print(json.dumps({{"predictions": [p for _, p in results], "times_us": times}}))
"""


def replay_on_device(settings_path, paths, float32=False):
    """Runs the device script's replay mode on the unix port: per recording, the class index of every window; and µs per window.

    float32=True runs it on a unix port whose Python floats are float32, as a microcontroller's (mpyml.device.run).
    """
    from mpyml import build, device

    build.build("emltrees", "x64")
    out = device.run(_REPLAY_SCRIPT.format(settings=str(settings_path), paths=[str(p) for p in paths]),
                     extra_path=PORTABLE_DIRS, float32=float32)
    result = json.loads(out.strip().splitlines()[-1])
    return result["predictions"], result["times_us"]


def confusion_text(matrix, classes) -> str:
    width = max(len(c) for c in classes) + 2
    lines = ["true \\ predicted".ljust(width) + "".join(c[:11].rjust(12) for c in classes)]
    for name, row in zip(classes, matrix):
        lines.append(name.ljust(width) + "".join(str(v).rjust(12) for v in row))
    return "\n".join(lines)


def run(config, out_dir: Path, log=print, progress: bool = True) -> dict:
    """Trains, evaluates, exports and replays on the unix port; returns the report's numbers.
    progress: a progress bar (tqdm, on stderr) over the grid searches of the held-out splits."""
    from sklearn.metrics import confusion_matrix, f1_score
    from tqdm import tqdm

    started = time.perf_counter()
    classes = config["classes"]
    recordings = load_recordings(config, log)
    X, y, groups, counts = window_features(recordings, config)
    log("windows: %d of %d samples every %d (%.2f s at %g Hz), %d features each" % (
        len(X), config["window"], config["hop"], config["window"] / config["samplerate"], config["samplerate"], X.shape[1]))
    seeds = config.get("split", {}).get("seeds", [1])
    f1_by_seed, splits = [], []
    for seed in tqdm(seeds, desc="grid search per held-out split", unit="split", disable=not progress, file=sys.stderr):
        train_index, test_index = held_out_split(y, groups, config, seed)
        search = train(X[train_index], y[train_index], groups[train_index], config, seed, log)
        pred = search.best_estimator_.predict(X[test_index])
        splits.append((test_index, search, pred))
        f1_by_seed.append(f1_score(y[test_index], pred, average="macro"))
        log("  held out %d recordings (%d windows), trained on %d (%d windows): held-out macro F1 %.3f" % (
            len(set(groups[test_index])), len(test_index), len(set(groups[train_index])), len(train_index), f1_by_seed[-1]))
    if len(seeds) > 1:
        log("held-out macro F1 over %d splits: mean %.3f, min %.3f, max %.3f" % (
            len(seeds), np.mean(f1_by_seed), min(f1_by_seed), max(f1_by_seed)))

    # the model of the first split is the one exported and replayed on the device
    test_index, search, host_pred = splits[0]
    test_names = sorted(set(groups[test_index]))
    best = search.best_estimator_
    f1 = f1_by_seed[0]
    matrix = confusion_matrix(y[test_index], host_pred, labels=range(len(classes)))
    log("split %d (exported): held-out macro F1 %.3f, best %s; confusion matrix of its held-out windows:" % (
        seeds[0], f1, search.best_params_))
    log(confusion_text(matrix, classes))

    stored, model_path, settings_path = export(best, config, out_dir)
    mirror_agrees = int(np.sum(stored.predict(X[test_index]) == host_pred))
    log("exported %s: %d trees, %d decision nodes, %d leaves; file %d B, device RAM %d B; numpy mirror agrees %d/%d" % (
        model_path, stored.n_trees, stored.n_nodes, stored.n_leaves, model_path.stat().st_size, stored.ram_bytes(),
        mirror_agrees, len(test_index)))

    # the host's predictions per held-out recording, in window order
    by_recording = {name: host_pred[groups[test_index] == name].tolist() for name in test_names}
    paths = [next(r.path for r in recordings if r.name == name) for name in test_names]
    device_pred, times_us = replay_on_device(settings_path, paths)
    agree = sum(int(a == b) for name, dev in zip(test_names, device_pred) for a, b in zip(by_recording[name], dev))
    same_counts = all(len(dev) == len(by_recording[name]) for name, dev in zip(test_names, device_pred))
    n_windows = len(test_index)
    log("unix port replay of %d held-out raw .npy recordings (npyfile + har_features + emltrees): "
        "%d/%d windows agree with the host%s" % (len(paths), agree, n_windows, "" if same_counts else " (WINDOW COUNTS DIFFER)"))
    window_us = config["window"] / config["samplerate"] * 1e6
    median_us = float(np.median(times_us))
    log("time per window on the unix port (features + prediction): median %.0f µs, mean %.0f µs = %.3f%% of the %.2f s window" % (
        median_us, float(np.mean(times_us)), 100 * median_us / window_us, window_us / 1e6))
    elapsed = time.perf_counter() - started
    log("done in %.1f s" % elapsed)
    return {
        "f1_macro": f1, "f1_by_seed": f1_by_seed, "confusion": matrix, "best_params": search.best_params_, "cv_f1": search.best_score_,
        "n_windows_test": n_windows, "agree": agree, "same_counts": same_counts, "mirror_agrees": mirror_agrees,
        "device_predictions": device_pred, "host_predictions": [by_recording[n] for n in test_names],
        "true_labels": [y[test_index][groups[test_index] == n].tolist() for n in test_names],
        "median_us": median_us, "mean_us": float(np.mean(times_us)), "real_time_fraction": median_us / window_us,
        "model_bytes": model_path.stat().st_size, "ram_bytes": stored.ram_bytes(), "stored": stored,
        "n_trees": stored.n_trees, "n_nodes": stored.n_nodes, "n_leaves": stored.n_leaves,
        "test_recordings": test_names, "n_recordings": len(recordings), "seconds": elapsed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(HERE / "config.yaml"))
    parser.add_argument("--data-dir", help="overrides dataset.data_dir of the config")
    parser.add_argument("--out", default=str(HERE / "out"), help="where the model and its settings go")
    parser.add_argument("--window", type=int, help="overrides the config's window (samples)")
    parser.add_argument("--hop", type=int, help="overrides the config's hop (samples)")
    parser.add_argument("--confusion-matrix", metavar="PNG", help="write the confusion matrix of the device's "
                        "classes on the held-out windows against the true ones (needs matplotlib: mpyml[plot])")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.data_dir, window=args.window, hop=args.hop)
    report = run(config, Path(args.out))
    if args.confusion_matrix:
        from mpyml.verify import plot_confusion_matrix

        plot_confusion_matrix(np.concatenate(report["true_labels"]), np.concatenate(report["device_predictions"]),
                              args.confusion_matrix, "device (unix port: npyfile + har_features + emltrees)",
                              "true class", "held-out windows", labels=config["classes"])
        print("confusion matrix: %s" % args.confusion_matrix)
    ok = report["agree"] == report["n_windows_test"] and report["same_counts"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
