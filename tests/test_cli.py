"""The `mpyml` command line: export, inspect, verify."""

import re
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.ensemble import ExtraTreesClassifier


def mpyml(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mpyml", *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=env)


def test_export_inspect_verify(emltrees_x64, tmp_path):
    X, y = load_wine(return_X_y=True)
    X = np.round(X * 100).astype(np.int16)
    estimator = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, y)
    joblib.dump(estimator, tmp_path / "est.joblib")
    np.save(tmp_path / "X.npy", X)

    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "wine.csv", "--dtype", "int16")
    assert out.returncode == 0, out.stderr
    assert "classifier (soft voting), 13 int16 features, 3 classes, 5 trees" in out.stdout

    out = mpyml("inspect", tmp_path / "wine.csv")
    assert out.returncode == 0 and "emltrees.new(5, " in out.stdout

    out = mpyml("verify", tmp_path / "est.joblib", tmp_path / "X.npy", "--dtype", "int16")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "178/178 rows agree with the library (predict)" in out.stdout and "OK" in out.stdout

    out = mpyml("verify", tmp_path / "est.joblib", tmp_path / "X.npy", "--voting", "hard")
    assert out.returncode == 0 and "rows agree" in out.stdout, out.stdout + out.stderr


def digits_forest_and_rows():
    """A forest whose soft (scikit-learn's predict) and hard votes differ on some test rows, with vote ties."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, max_leaf_nodes=30, random_state=1).fit(X[:1200], y[:1200])
    return forest, X[1200:]


def test_verify_hard_voting_against_the_majority_of_the_trees(emltrees_x64, tmp_path):
    """--voting hard is compared with the majority vote of the forest's own fitted trees, not with its
    (soft) predict, and the output says which reference it used; agreement with predict is information."""
    forest, X = digits_forest_and_rows()
    joblib.dump(forest, tmp_path / "rf.joblib")
    np.save(tmp_path / "X.npy", X)
    out = mpyml("verify", tmp_path / "rf.joblib", tmp_path / "X.npy", "--voting", "hard")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "597/597 rows agree with the library (reference: majority vote of the 10 trees' predict (hard voting))" \
        in out.stdout and out.stdout.rstrip().endswith(": OK on the unix port"), out.stdout
    soft = re.search(r"(\d+)/597 rows agree with RandomForestClassifier.predict \(soft voting; information\)", out.stdout)
    assert soft and int(soft.group(1)) < 597, out.stdout  # the rows where soft and hard voting differ are here

    # The trees' own votes (computed here, independently): tied rows are among them, decided as the device does.
    votes = np.zeros((len(X), 10), dtype=np.int64)
    for tree in forest.estimators_:
        votes[np.arange(len(X)), tree.predict(X.astype(np.float32)).astype(np.int64)] += 1
    assert np.sum(np.sum(votes == votes.max(axis=1, keepdims=True), axis=1) > 1) > 0


@pytest.mark.parametrize("name", ["random forest", "bagging", "pipeline", "tree"])
def test_verify_hard_voting_of_every_tree_model(emltrees_x64, tmp_path, name):
    from sklearn.datasets import load_wine
    from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from mpyml import device, verify

    if name == "random forest":  # verify_trees, the Python API the demo uses
        forest, X = digits_forest_and_rows()
        report = verify.verify_trees(forest, X, tmp_path / "rf.csv", voting="hard", run=device.predict_trees)
        assert report.ok and report.n_agree == report.n_rows == 597, report.summary()
        assert "rows agree with scikit-learn's majority vote of the 10 trees' predict" in report.summary()
        return
    X, y = load_wine(return_X_y=True)
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:100], order[100:]
    estimator = {
        "bagging": BaggingClassifier(DecisionTreeClassifier(max_depth=3), n_estimators=8, max_features=0.5,
                                     random_state=0),
        "pipeline": make_pipeline(StandardScaler(), RandomForestClassifier(8, max_depth=3, random_state=0)),
        "tree": DecisionTreeClassifier(max_depth=4, random_state=0),
    }[name].fit(X[train], labels[train])
    report = verify.verify_file(estimator, X[test], tmp_path / "model.csv", voting="hard", progress=False)
    assert report.ok and report.n_agree == report.n_rows == len(test), report.summary()
    assert report.agree_what.startswith("reference: ") and "soft voting; information" in report.summary()


def test_demo_runs():
    out = mpyml("demo")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all predictions match scikit-learn" in out.stdout


def test_verify_regressor_prints_the_worst_relative_error(emltrees_x64, tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    joblib.dump(RandomForestRegressor(5, max_depth=5, random_state=0).fit(X, y), tmp_path / "reg.joblib")
    np.save(tmp_path / "X.npy", X[:100])
    out = mpyml("verify", tmp_path / "reg.joblib", tmp_path / "X.npy")
    assert out.returncode == 0, out.stdout + out.stderr
    worst = re.search(r"100/100 rows agree with the library \(predict within 1e-05 relative\), worst error (\S+) "
                      r"\(predict, relative\);", out.stdout)
    assert worst and float(worst.group(1)) <= 1e-5, out.stdout


def test_verify_says_what_x_must_be(tmp_path):
    joblib.dump(fitted("knn"), tmp_path / "est.joblib")
    (tmp_path / "X.csv").write_text("1,2,3,4\n")
    out = mpyml("verify", tmp_path / "est.joblib", tmp_path / "X.csv")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert out.stderr.startswith("mpyml verify: %s: X must be a .npy file written by numpy.save (an array of shape "
                                 "(n_rows, n_features))" % (tmp_path / "X.csv")), out.stderr
    assert "allow_pickle" not in out.stderr and out.stderr.count("\n") == 1


def test_export_summary_in_words(tmp_path):
    from sklearn.datasets import load_diabetes
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    joblib.dump(DecisionTreeRegressor(max_depth=1).fit(X, y), tmp_path / "reg.joblib")
    out = mpyml("export", tmp_path / "reg.joblib", tmp_path / "reg.csv", "--dtype", "float32")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "reg.csv: regressor, 10 float32 features, 1 tree, 1 decision node, 2 leaves" in out.stdout, \
        out.stdout


def test_demo_without_micropython_says_so(tmp_path):
    import os

    out = mpyml("demo", env=dict(os.environ, MPY_DIR=str(tmp_path)))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert out.stderr.strip() == "mpyml demo: MPY_DIR=%s is not a MicroPython source tree (no py/dynruntime.mk)" % tmp_path


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


# ---------------------------------------------------------------- export: every family, with its options


def fitted(name):
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.ensemble import BaggingClassifier
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "bagging": lambda: BaggingClassifier(n_estimators=4, max_features=2, random_state=0).fit(X * 10, y),
            "pipeline": lambda: make_pipeline(StandardScaler(), SelectKBest(k=3),
                                              ExtraTreesClassifier(4, random_state=0)).fit(X32, y),
            "knn": lambda: KNeighborsClassifier(3).fit(np.round(X * 10), y),
            "nn pipeline": lambda: make_pipeline(StandardScaler(), NearestNeighbors()).fit(X),
            "linear": lambda: LogisticRegression(max_iter=1000).fit(X, y),
            "mlp": lambda: MLPClassifier((8,), max_iter=300, random_state=0).fit(X, y),
            "svc": lambda: SVC().fit(X, y),
        }[name]()


EXPORTS = [
    ("bagging", [], "classifier (soft voting), 4 int16 features, 3 classes, 4 trees"),
    ("bagging", ["--dtype", "float32", "--voting", "hard"], "classifier (hard voting), 4 float32 features"),
    ("pipeline", ["--dtype", "float32", "--input-dtype", "float32"], "decides as pipeline.predict on float32 input"),
    ("knn", [], "150 int16 items of 4 features, k=3, euclidean metric, uniform weights, novelty threshold"),
    ("knn", ["--dtype", "float32", "--novelty-percentile", "none"], "150 float32 items of 4 features, k=3"),
    ("nn pipeline", ["--novelty-percentile", "95"], "150 float32 items of 4 features, k=5"),
    ("linear", [], "classifier, 4 features -> 3 outputs, steps matrix"),
    ("mlp", [], "MLPClassifier float32 net, 2 layers"),
    ("mlp", ["--quantize", "int8", "--representative-data", "X.npy"], "MLPClassifier int8 net, 2 layers"),
]


@pytest.mark.parametrize("name, options, expected", EXPORTS)
def test_export_every_family(tmp_path, name, options, expected):
    from sklearn.datasets import load_iris

    estimator = fitted(name)
    joblib.dump(estimator, tmp_path / "est.joblib")
    np.save(tmp_path / "X.npy", load_iris(return_X_y=True)[0][:60])
    options = [str(tmp_path / o) if o.endswith(".npy") else o for o in options]
    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "model.out", *options)
    assert out.returncode == 0, out.stdout + out.stderr
    assert expected in out.stdout, out.stdout
    if name == "nn pipeline":
        assert "threshold,none" not in (tmp_path / "model.out").read_text()
        assert "no novelty threshold" not in out.stdout
    inspected = mpyml("inspect", tmp_path / "model.out")
    assert inspected.returncode == 0, inspected.stderr
    # inspect reads back what export wrote: the same summary, line for line (the pipeline's input dtype and
    # the net's source class are not in the file).
    exported = [line.replace("MLPClassifier ", "") for line in out.stdout.splitlines() if "input" not in line]
    assert exported + ["  %s on the unix port loads it: OK" % exported_module(tmp_path / "model.out")] \
        == inspected.stdout.splitlines()


def exported_module(path):
    from mpyml import verify

    return verify.file_module(path)


@pytest.mark.parametrize("name, options, message", [
    ("knn", ["--voting", "hard"], "got option --voting that KNeighborsClassifier (mpyml-neighbors) does not take"),
    ("mlp", ["--dtype", "int16"], "mpyml export: got option --dtype that MLPClassifier (mpyml-nets) does not take; "
     "it takes: --quantize, --representative-data\n"),
    ("bagging", ["--novelty-percentile", "90"], "got option --novelty-percentile that BaggingClassifier"),
    ("knn", ["--novelty-percentile", "120"], "mpyml export: --novelty-percentile must be 0..100, got 120.0\n"),
    ("svc", [], "SVC is not a supported estimator; supported: DecisionTreeClassifier,"),
])
def test_export_refuses_clearly(tmp_path, name, options, message):
    joblib.dump(fitted(name), tmp_path / "est.joblib")
    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "model.out", *options)
    assert out.returncode == 2 and message in out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "model.out").exists()


def test_export_warns_in_one_line_with_the_flags(tmp_path):
    joblib.dump(fitted("pipeline"), tmp_path / "est.joblib")
    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "model.out", "--dtype", "int16")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.startswith("mpyml export: warning: --dtype int16: this model's thresholds") and \
        out.stderr.count("\n") == 1 and "use --dtype float32" in out.stderr, out.stderr


def test_export_unreadable_estimator(tmp_path):
    (tmp_path / "est.joblib").write_bytes(b"not a pickle")
    out = mpyml("export", tmp_path / "est.joblib", tmp_path / "model.out")
    assert out.returncode == 2 and "cannot load" in out.stderr and "Traceback" not in out.stderr


def test_export_keras_model_file(tmp_path):
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    X = np.random.default_rng(0).random((40, 8, 8, 1)).astype(np.float32)
    model.fit(X, np.arange(40) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "cnn.keras")
    np.save(tmp_path / "X.npy", X)
    env = dict(os.environ, KERAS_BACKEND=os.environ["KERAS_BACKEND"])
    out = mpyml("export", tmp_path / "cnn.keras", tmp_path / "cnn.bin", env=env)
    assert out.returncode == 0 and "float32 net, 2 layers" in out.stdout, out.stdout + out.stderr
    out = mpyml("export", tmp_path / "cnn.keras", tmp_path / "cnn8.bin", "--quantize", "int8",
                "--representative-data", tmp_path / "X.npy", env=env)
    assert out.returncode == 0 and "int8 net, 2 layers" in out.stdout, out.stdout + out.stderr
