"""emltrees follows scikit-learn where float32 or a naive walk would not (issue 11): NaN features,
exact ties in soft voting, AdaBoostClassifier (SAMME), class labels; and refuses what it cannot do.
Every device prediction is compared with scikit-learn itself on the unix port."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor, BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

import mpyml
from mpyml import device, trees, verify
from mpyml.formats import trees as trees_format
from mpyml.demo import int16_scaled


def device_classes(estimator, X, tmp_path, dtype="float32", voting="soft"):
    """(device class indices, device probabilities, stored) for X."""
    stored = trees.lower(trees.forest_from_sklearn(estimator), dtype=dtype, voting=voting)
    path = tmp_path / "model.csv"
    trees_format.save(stored, path)
    pred, proba = device.predict_trees(path, X, stored)
    return pred, proba, stored


# ---------------------------------------------------------------- NaN features

def test_nan_goes_where_training_sent_it(emltrees_x64, tmp_path):
    X = np.array([[np.nan], [0], [1], [2]], dtype=np.float32)
    tree = DecisionTreeClassifier().fit(X, [0, 0, 1, 1])
    nan = np.array([[np.nan]], dtype=np.float32)
    assert tree.predict(nan).tolist() == [0]
    pred, _, stored = device_classes(tree, nan, tmp_path)
    assert pred.tolist() == [0] and stored.predict(nan).tolist() == [0]


def test_nan_without_nan_in_training_goes_to_the_bigger_child(emltrees_x64, tmp_path):
    tree = DecisionTreeClassifier().fit(np.array([[0], [1], [2], [3]], dtype=np.float32), [0, 0, 0, 1])
    nan = np.array([[np.nan]], dtype=np.float32)
    assert tree.predict(nan).tolist() == [0]
    pred, _, stored = device_classes(tree, nan, tmp_path)
    assert pred.tolist() == [0] and stored.predict(nan).tolist() == [0]


@pytest.mark.parametrize("seed", range(6))
def test_nan_rows_on_random_forests(emltrees_x64, tmp_path, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    X[rng.random(X.shape) < 0.15] = np.nan  # some trees learn where NaN goes, others meet it only at predict
    make = [lambda: RandomForestClassifier(n_estimators=7, max_depth=6, random_state=seed),
            lambda: DecisionTreeClassifier(random_state=seed)][seed % 2]
    estimator = make().fit(X[:200], y[:200])
    X_test = X[200:].copy()
    X_test[rng.random(X_test.shape) < 0.3] = np.nan
    pred, proba, stored = device_classes(estimator, X_test, tmp_path)
    np.testing.assert_array_equal(stored.classes[pred], estimator.predict(X_test))
    np.testing.assert_allclose(proba, estimator.predict_proba(X_test), atol=1e-6)
    np.testing.assert_array_equal(pred, stored.predict_index(X_test))


def test_nan_through_a_folded_scaler(emltrees_x64, tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, y)
    stored = mpyml.export(pipe, tmp_path / "pipe.csv", feature_dtype="float32")
    X_test = X.astype(np.float32)
    pred, _ = device.predict_trees(tmp_path / "pipe.csv", X_test, stored)
    np.testing.assert_array_equal(stored.classes[pred], pipe.predict(X_test))


# ---------------------------------------------------------------- exact ties

def test_extra_trees_tie_follows_float64(emltrees_x64, tmp_path):
    X = np.arange(8, dtype=np.float32).reshape(-1, 1)
    et = ExtraTreesClassifier(n_estimators=3, max_depth=1, random_state=226).fit(X, [0, 0, 1, 1, 1, 0, 1, 0])
    x = np.array([[5]], dtype=np.float32)
    assert et.predict_proba(x).tolist() == [[0.49999999999999994, 0.5]] and et.predict(x).tolist() == [1]
    for dtype in ("float32", "int16"):
        pred, _, stored = device_classes(et, x, tmp_path, dtype=dtype)
        assert pred.tolist() == [1] and stored.predict(x).tolist() == [1], dtype


def test_balanced_class_weight_ties(emltrees_x64, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(200, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=200)
    rf = RandomForestClassifier(class_weight="balanced", n_estimators=7, random_state=0).fit(X, y)
    grid = np.array(np.meshgrid(*[np.arange(4)] * 3)).reshape(3, -1).T.astype(np.float32)
    pred, _, stored = device_classes(rf, grid, tmp_path)
    np.testing.assert_array_equal(stored.classes[pred], rf.predict(grid))


def test_weighted_leaves_keep_float64_probabilities(emltrees_x64, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, size=(200, 3)).astype(np.float32)
    y = rng.integers(0, 3, size=200)
    rf = ExtraTreesClassifier(n_estimators=7, random_state=0).fit(X, y, sample_weight=rng.random(200) + 0.5)
    grid = np.array(np.meshgrid(*[np.arange(4)] * 3)).reshape(3, -1).T.astype(np.float32)
    pred, proba, stored = device_classes(rf, grid, tmp_path)
    assert stored.leaf_kind == "float64"  # no integer counts give scikit-learn's probabilities exactly
    np.testing.assert_array_equal(stored.classes[pred], rf.predict(grid))
    np.testing.assert_allclose(proba, rf.predict_proba(grid), atol=1e-6)
    np.testing.assert_array_equal(proba, stored.predict_proba(grid))


# ---------------------------------------------------------------- AdaBoost (SAMME)

def test_adaboost_issue_case(emltrees_x64, tmp_path):
    X = np.array([[0], [1], [2]], dtype=np.float32)
    ada = AdaBoostClassifier(n_estimators=2, random_state=0).fit(X, [0, 1, 0])
    assert ada.predict(X).tolist() == [0, 1, 1]
    pred, proba, stored = device_classes(ada, X, tmp_path)
    assert stored.classes[pred].tolist() == [0, 1, 1]
    np.testing.assert_allclose(proba, ada.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("dataset", ["iris", "wine", "breast_cancer", "digits"])
def test_adaboost_parity(emltrees_x64, tmp_path, dataset, dtype):
    load = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits}[dataset]
    X, y = load(return_X_y=True)
    test_size = 0.5 if dataset == "digits" else 0.3
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=test_size, random_state=42)
    if dtype == "int16":
        X_train, X_test = int16_scaled(X_train, X_test)
    else:
        X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    ada = AdaBoostClassifier(estimator=DecisionTreeClassifier(max_depth=3), n_estimators=40, random_state=0).fit(X_train, y_train)
    report = verify.verify_trees(ada, X_test, tmp_path / "ada.csv", feature_dtype=dtype, run=device.predict_trees)
    if dataset == "digits":
        assert report.n_rows == 899 or report.n_rows == 898 or report.n_rows > 800
    assert report.n_agree == report.n_rows, report.summary()
    assert report.max_proba_error <= 1e-5, report.summary()
    assert report.matches_reference, report.summary()


def test_adaboost_regressor_is_refused_and_bagging_is_not_a_forest():
    X, y = np.arange(10.0).reshape(-1, 1), np.arange(10) % 2
    with pytest.raises(mpyml.ExportError, match="AdaBoostRegressor is not a supported estimator"):
        mpyml.export(AdaBoostRegressor(n_estimators=2).fit(X, y), "unused.csv")
    with pytest.raises(mpyml.ExportError, match="AdaBoostRegressor is not a supported estimator"):
        trees.forest_from_sklearn(AdaBoostRegressor(n_estimators=2).fit(X, y))
    # Bagging is supported through its own converter (mpyml.ensembles), not as a forest.
    with pytest.raises(mpyml.ExportError, match="BaggingClassifier is not a forest"):
        trees.forest_from_sklearn(BaggingClassifier(DecisionTreeClassifier(), n_estimators=2).fit(X, y))


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("labels", [["cat", "dog, big", "émeu"], [3, 7, -1], [1.0, 2.0, -3.0], [True, False, True]])
def test_class_labels_on_the_device(emltrees_x64, tmp_path, labels):
    X = np.arange(12, dtype=np.float32).reshape(-1, 1)
    y = np.array([labels[i % len(labels)] for i in range(12)], dtype=object if isinstance(labels[0], str) else None)
    rf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    stored = mpyml.export(rf, tmp_path / "m.csv", feature_dtype="float32")
    np.testing.assert_array_equal(stored.predict(X), rf.predict(X))
    out = device.run("import emltrees\nm = emltrees.new(3, 100, 100)\nemltrees.load_model(m, %r)\nprint(repr(m.classes))\n"
                     % str(tmp_path / "m.csv"))
    assert eval(out) == list(rf.classes_)


def test_feature_names_and_dataframe_order(emltrees_x64, tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"b": [0.0, 1, 2, 3], "a": [1.0, 0, 1, 0]})
    tree = DecisionTreeClassifier().fit(X, [0, 1, 1, 0])
    stored = mpyml.export(tree, tmp_path / "m.csv", feature_dtype="float32")
    assert list(trees_format.load(tmp_path / "m.csv").feature_names) == ["b", "a"]
    np.testing.assert_array_equal(stored.predict(X), tree.predict(X))
    with pytest.raises(ValueError, match="feature names in order"):
        stored.predict(X[["a", "b"]])
    out = device.run("import emltrees\nm = emltrees.new(1, 10, 10)\nemltrees.load_model(m, %r)\nprint(m.classes)\n"
                     % str(tmp_path / "m.csv"))
    assert out.strip() == "[0, 1]"


def test_regressor_has_no_classes(emltrees_x64, tmp_path):
    from sklearn.tree import DecisionTreeRegressor

    tree = DecisionTreeRegressor().fit(np.arange(4.0).reshape(-1, 1), [0.0, 1, 2, 3])
    mpyml.export(tree, tmp_path / "r.csv", feature_dtype="float32")
    out = device.run("import emltrees\nm = emltrees.new(1, 10, 10)\nemltrees.load_model(m, %r)\nprint(m.classes)\n"
                     % str(tmp_path / "r.csv"))
    assert out.strip() == "None"


# ---------------------------------------------------------------- integrity and integer ranges

def test_old_versions_and_truncation_are_refused(emltrees_x64, tmp_path):
    tree = DecisionTreeClassifier().fit(np.arange(6.0).reshape(-1, 1), [0, 0, 1, 1, 0, 1])
    mpyml.export(tree, tmp_path / "m.csv", feature_dtype="float32")
    text = (tmp_path / "m.csv").read_text()
    cases = {
        "v1": text.replace("mpyml-trees,3", "mpyml-trees,1", 1),
        "cut": text[:-3],
        "no end": text[:text.rindex("end,")],
        "flip": text.replace("leaves\n", "leaves\n#\n", 1).replace("\n#\n", "\n", 1).replace("0:", "1:", 1),
    }
    for name, body in cases.items():
        (tmp_path / (name + ".csv")).write_text(body)
    script = "import emltrees\nm = emltrees.new(1, 10, 10)\nfor name in %r:\n" \
             "    try:\n        emltrees.load_model(m, %r + '/' + name + '.csv')\n        print(name, 'LOADED')\n" \
             "    except ValueError as e:\n        print(name, e)\n" % (list(cases), str(tmp_path))
    out = device.run(script).splitlines()
    assert out[0] == ("v1 model file line 1: format version 1 is no longer read by this emltrees (it reads version 3): "
                      "export the model again")
    for line in out[1:]:
        assert "truncated or corrupt" in line, line


@pytest.mark.parametrize("what", ["feature", "threshold", "child", "root"])
def test_integers_of_2_64_do_not_wrap(emltrees_x64, tmp_path, what):
    from mpyml.formats import records

    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(np.arange(8).reshape(-1, 1) % 5, [0, 1, 1, 0, 1, 0, 0, 1])
    stored = trees.lower(trees.forest_from_sklearn(tree), dtype="int16")
    lines = trees_format.dumps(stored).splitlines()[:-1]
    node = lines.index("nodes") + 1
    fields = lines[node].split(",")
    for big in (2**64, 2**64 + 1):
        edited = list(lines)
        if what == "root":
            edited[lines.index("trees") + 1] = str(int(lines[lines.index("trees") + 1]) + big)
        else:
            index = {"feature": 0, "threshold": 1, "child": 2}[what]
            changed = list(fields)
            changed[index] = str(int(changed[index]) + big)
            edited[node] = ",".join(changed)
        (tmp_path / "big.csv").write_text(records.seal("\n".join(edited) + "\n"))
        out = device.run("import emltrees\nm = emltrees.new(1, 10, 10)\ntry:\n    emltrees.load_model(m, %r)\n"
                         "    print('LOADED')\nexcept ValueError as e:\n    print(e)\n" % str(tmp_path / "big.csv"))
        assert "LOADED" not in out and "line %d" % (node + 1 if what != "root" else lines.index("trees") + 2) in out, out
