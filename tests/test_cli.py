"""The `mpyml` command line: export, inspect, verify."""

import subprocess
import sys

import joblib
import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import ExtraTreesClassifier


def mpyml(*args):
    return subprocess.run([sys.executable, "-m", "mpyml", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_export_inspect_verify(emltrees_x64, tmp_path):
    X, y = load_wine(return_X_y=True)
    X = np.round(X * 100).astype(np.int16)
    estimator = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, y)
    joblib.dump(estimator, tmp_path / "est.joblib")
    np.save(tmp_path / "X.npy", X)

    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "wine.csv")
    assert out.returncode == 0, out.stderr
    assert "classifier (soft voting), 13 int16 features, 3 classes, 5 trees" in out.stdout

    out = mpyml("inspect", tmp_path / "wine.csv")
    assert out.returncode == 0 and "emltrees.new(5, " in out.stdout

    out = mpyml("verify", tmp_path / "est.joblib", tmp_path / "X.npy")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "178/178 rows agree with scikit-learn" in out.stdout and "OK" in out.stdout

    out = mpyml("verify", tmp_path / "est.joblib", tmp_path / "X.npy", "--voting", "hard")
    assert "matches numpy reference" in out.stdout


def test_demo_runs():
    out = mpyml("demo")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all predictions match scikit-learn" in out.stdout


def test_inspect_every_format(emltrees_x64, tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mpyml import export

    X, y = load_iris(return_X_y=True)
    export(KNeighborsClassifier(3).fit(np.round(X * 10), y), tmp_path / "knn.csv")
    export(make_pipeline(StandardScaler(), KNeighborsClassifier(3)).fit(X, y), tmp_path / "knn2.csv")
    export(MLPClassifier((8,), max_iter=300, random_state=0).fit(X, y), tmp_path / "net.bin")
    out = mpyml("inspect", tmp_path / "knn.csv")
    assert out.returncode == 0 and "150 int16 items of 4 features, k=3" in out.stdout, out.stdout + out.stderr
    out = mpyml("inspect", tmp_path / "knn2.csv")
    assert out.returncode == 0 and "steps" in out.stdout and "150 float32 items" in out.stdout, out.stdout + out.stderr
    out = mpyml("inspect", tmp_path / "net.bin")
    assert out.returncode == 0 and "arena" in out.stdout, out.stdout + out.stderr
