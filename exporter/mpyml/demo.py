"""The main job, end to end: train on the PC, export, build the natmod, predict on the unix port, report."""

from __future__ import annotations

import sys

import numpy as np


def int16_scaled(X_train: np.ndarray, X_test: np.ndarray, headroom: float = 0.5):
    """Scales features to int16 by one factor per feature, taken from the training data."""
    scale = (32767 * headroom) / np.maximum(np.abs(X_train).max(axis=0), 1e-12)
    return [np.round(X * scale).astype(np.int16) for X in (X_train, X_test)]


def cases():
    """(name, fitted estimator, test features, feature dtype) for the demo and the README table."""
    from sklearn.datasets import load_diabetes, load_digits
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X.astype(np.int16), y, random_state=1)
    rf = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1).fit(X_train, y_train)
    yield "digits RandomForestClassifier int16", rf, X_test, "int16"

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X.astype(np.float32), y, random_state=1)
    reg = RandomForestRegressor(n_estimators=20, max_depth=8, random_state=1).fit(X_train, y_train)
    yield "diabetes RandomForestRegressor float32", reg, X_test, "float32"

    X_train_i, X_test_i = int16_scaled(X_train, X_test)
    reg = RandomForestRegressor(n_estimators=20, max_depth=8, random_state=1).fit(X_train_i, y_train)
    yield "diabetes RandomForestRegressor int16", reg, X_test_i, "int16"


def main() -> int:
    from . import build, device, verify

    print("building emltrees for the unix port (x64) ...")
    try:
        built = build.build("emltrees", "x64")
    except build.BuildError as error:
        print("mpyml demo: %s" % error, file=sys.stderr)
        return 2
    print("  ", built.relative_to(build.REPO) if build.REPO else built)
    out_dir = build.BUILD_DIR / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for name, estimator, X_test, dtype in cases():
        path = out_dir / (name.replace(" ", "_") + ".csv")
        report = verify.verify_trees(estimator, X_test, path, feature_dtype=dtype, run=device.predict_trees, name=name)
        print(report.summary())
        all_ok &= report.ok
    print("all predictions match scikit-learn" if all_ok else "MISMATCHES FOUND")
    all_ok &= _har_example()
    return 0 if all_ok else 1


def _har_example() -> bool:
    """Activity recognition on real accelerometer recordings (examples/har_trees), when the dataset is there."""
    import subprocess

    from .build import REPO

    if REPO is None:
        print("examples/har_trees skipped: it runs in a checkout of the project")
        return True
    data = REPO.parent / "shared" / "datasets" / "har_exercise_1"
    if not data.is_dir():
        print("examples/har_trees skipped: no dataset at %s" % data)
        return True
    print("\nexamples/har_trees: train on accelerometer recordings, replay held-out recordings on the unix port ...")
    return subprocess.run([sys.executable, str(REPO / "examples" / "har_trees" / "run.py")]).returncode == 0


if __name__ == "__main__":
    sys.exit(main())
