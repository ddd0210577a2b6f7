"""A trimmed emltrees (`mpyml build --for MODEL_FILE`): only the features its model files need
(natmods/emltrees/emltrees.c, MPYML_TREES_WITH_*), the same answers as the full build and
scikit-learn, and a clear refusal of a file that needs a feature it lacks."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeRegressor

import mpyml
from mpyml import build, device


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("trimmed")
    X, y = load_digits(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=0).fit(X[:1200], y[:1200])
    mpyml.export(forest, d / "hard.csv", feature_dtype="int16", voting="hard")
    mpyml.export(forest, d / "soft32.csv", feature_dtype="float32")
    boosted = GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X[:300], y[:300])
    mpyml.export(boosted, d / "boost.csv", feature_dtype="int16")
    mpyml.export(DecisionTreeRegressor(max_depth=3).fit(X[:300], X[:300, 20]), d / "regressor.csv", feature_dtype="int16")
    return d, forest, X[1200:].astype(np.int16)


def test_the_features_a_build_needs_come_from_the_model_files(models):
    d, _, _ = models
    assert build.trees_features([d / "hard.csv"]) == []
    assert build.trees_features([d / "soft32.csv"]) == ["FLOAT32", "SOFT"]
    assert build.trees_features([d / "boost.csv", d / "regressor.csv"]) == ["REGRESSOR", "BOOST"]
    assert build.trees_features([d / "hard.csv", d / "soft32.csv"]) == ["FLOAT32", "SOFT"]


PREDICT = """
import emltrees, array
m = emltrees.new(30, 1000, 1000)
emltrees.load_model(m, {path!r})
X = array.array('h', {rows!r})
out = array.array('H', bytes(2 * {n}))
m.predict_many(X, out)
p = array.array('f', bytes(40))
m.predict_proba(array.array('h', {first!r}), p)
print(list(out))
print(list(p))
print(m.voting, m.typecode, m.n_steps, m.classes)
for name in ({others!r}):
    try:
        emltrees.load_model(m, name)
        print('LOADED', name)
    except ValueError as e:
        print(e)
    print(m.loaded)
"""


def run(mpy, path, X, others=()):
    script = PREDICT.format(path=str(path), rows=X.ravel().tolist(), n=len(X), first=X[0].tolist(),
                            others=tuple(str(p) for p in others))
    return device.run(script, mpy=mpy).splitlines()


def test_a_hard_voting_int16_build_predicts_as_the_full_build_and_scikit_learn(models, tmp_path):
    d, forest, X = models
    full = build.build("emltrees", "x64")
    trimmed = build.build("emltrees", "x64", out=tmp_path, features=[])
    assert trimmed.stat().st_size < full.stat().st_size
    others = [d / "boost.csv", d / "soft32.csv", d / "regressor.csv"]
    out_trimmed = run(tmp_path, d / "hard.csv", X, others)
    out_full = run(None, d / "hard.csv", X)
    assert out_trimmed[:3] == out_full[:3]
    votes = np.zeros((len(X), 10), dtype=np.int64)
    for tree in forest.estimators_:
        votes[np.arange(len(X)), tree.predict(X.astype(np.float32)).astype(np.int64)] += 1
    assert eval(out_trimmed[0]) == np.argmax(votes, axis=1).tolist()
    np.testing.assert_allclose(eval(out_trimmed[1]), votes[0] / 10, atol=1e-6)
    assert out_trimmed[2] == "hard h 0 [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    refusals = out_trimmed[3:]
    for feature, message, loaded in zip(["gradient boosting and IsolationForest (MPYML_TREES_WITH_BOOST)",
                                         "soft voting with class counts (MPYML_TREES_WITH_SOFT)",
                                         "forest regressors (MPYML_TREES_WITH_REGRESSOR)"],
                                        refusals[0::2], refusals[1::2]):
        assert message.startswith("model file line ") and ("built without " + feature) in message, message
        assert "mpyml build --for" in message and "the full one with 'mpyml build --arch ARCH'" in message
        assert loaded == "False"


def test_a_build_for_several_files_reads_each(models, tmp_path):
    d, _, X = models
    build.build("emltrees", "x64", out=tmp_path, features=build.trees_features([d / "boost.csv", d / "hard.csv"]))
    out = run(tmp_path, d / "hard.csv", X, [d / "boost.csv", d / "soft32.csv"])
    assert out[3] == "LOADED %s" % (d / "boost.csv") and out[4] == "True"
    assert "MPYML_TREES_WITH_SOFT)" in out[5] and out[6] == "False"


def test_the_cli_builds_for_model_files(models, tmp_path):
    d, _, _ = models
    out = subprocess.run([sys.executable, "-m", "mpyml", "build", "--arch", "x64", "--out", str(tmp_path),
                          "--for", str(d / "soft32.csv")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "emltrees trimmed for %s: FLOAT32, SOFT" % (d / "soft32.csv") in out.stdout
    assert (tmp_path / "x64_6.3" / "emltrees.mpy").is_file()
    bad = subprocess.run([sys.executable, "-m", "mpyml", "build", "--module", "emliir", "--for", str(d / "hard.csv")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--for builds emltrees only" in bad.stderr


@pytest.mark.boards
def test_a_trimmed_build_on_the_cortex_m3_board(models):
    """MPS2_AN385 (Cortex-M3, float32): the trimmed armv7m module predicts as scikit-learn's trees vote
    and refuses the boosted file; its import takes less heap than the full module's."""
    from mpyml import boards

    d, forest, X = models
    X = X[:40]
    trimmed = build.build("emltrees", "armv7m", out=d / "board", features=[])
    full = build.build("emltrees", "armv7m")
    script = PREDICT.format(path="hard.csv", rows=X.ravel().tolist(), n=len(X), first=X[0].tolist(), others=("boost.csv",))
    files = {"hard.csv": d / "hard.csv", "boost.csv": d / "boost.csv"}
    out = boards.run("MPS2_AN385", script, files=files, modules={"emltrees.mpy": trimmed}).splitlines()
    votes = np.zeros((len(X), 10), dtype=np.int64)
    for tree in forest.estimators_:
        votes[np.arange(len(X)), tree.predict(X.astype(np.float32)).astype(np.int64)] += 1
    assert eval(out[0]) == np.argmax(votes, axis=1).tolist()
    assert "built without gradient boosting and IsolationForest (MPYML_TREES_WITH_BOOST)" in out[3] and out[4] == "False"
    ram = "import gc\ngc.collect()\nb = gc.mem_alloc()\nimport emltrees\ngc.collect()\nprint(gc.mem_alloc() - b)\n"
    small = int(boards.run("MPS2_AN385", ram, modules={"emltrees.mpy": trimmed}))
    large = int(boards.run("MPS2_AN385", ram, modules={"emltrees.mpy": full}))
    assert small < large


@pytest.mark.parametrize("arch", ["x64", "armv7m"])
def test_a_trimmed_build_is_never_larger_than_the_full_build(arch, tmp_path):
    try:
        full = build.build("emltrees", arch, out=tmp_path / "full").stat().st_size
    except build.ToolchainMissing as e:
        pytest.skip(str(e))
    for features in (["BOOST"], ["FLOAT32", "SOFT", "BOOST"], ["FLOAT32", "SOFT"], []):
        trimmed = build.build("emltrees", arch, out=tmp_path / "-".join(["t"] + features), features=features)
        assert trimmed.stat().st_size <= full, (features, trimmed.stat().st_size, full)
