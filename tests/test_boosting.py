"""Gradient boosting in emltrees: scikit-learn GradientBoosting and HistGradientBoosting, XGBoost and LightGBM.

Every model is compared three ways: the library's own predict / predict_proba against the numpy mirror
(classes identical, probabilities and regression values within 1e-5 relative), and the mirror against the
device on the unix port (bit for bit). Rows: each dataset's test rows plus rows on and next to every stored
threshold, and rows with NaN features for float32 models.
"""


import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor)
from sklearn.model_selection import train_test_split

import mpyml
from mpyml import boosting, device, trees
from mpyml.formats import trees as trees_format
from mpyml.demo import int16_scaled
from mpyml import ExportError

from test_c_core import driver, driver_o2  # noqa: E402,F401  (session fixtures: the C driver builds)

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

PROBA_RTOL, PROBA_ATOL = 1e-5, 1e-7  # XGBoost's own class-0 probability is 1 - p in float32 (6e-8 absolute)
VALUE_RTOL = 1e-5


def random_classification(return_X_y=True):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 6)) * [1, 10, 100, 0.1, 1, 5]
    y = (X[:, 0] + X[:, 1] / 10 + rng.normal(size=400) > 0).astype(int)
    return X, y


def random_regression(return_X_y=True):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 5)) * [1, 10, 100, 0.1, 1]
    return X, X[:, 0] * 3 + np.sin(X[:, 1]) + rng.normal(size=400) * 0.1 + 5


CLASSIFICATION = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer, "digits": load_digits,
                  "random": random_classification}
REGRESSION = {"diabetes": load_diabetes, "random": random_regression}
N = 12  # boosting iterations: enough trees for real sums, few enough for a quick test

CLASSIFIERS = {
    "GradientBoostingClassifier": lambda: GradientBoostingClassifier(n_estimators=N, max_depth=3, random_state=0),
    "GradientBoostingClassifier exponential": lambda: GradientBoostingClassifier(
        n_estimators=N, loss="exponential", random_state=0),
    "GradientBoostingClassifier init zero": lambda: GradientBoostingClassifier(
        n_estimators=N, init="zero", subsample=0.7, random_state=0),
    "HistGradientBoostingClassifier": lambda: HistGradientBoostingClassifier(max_iter=N, max_leaf_nodes=15, random_state=0),
    "XGBClassifier": lambda: xgboost.XGBClassifier(n_estimators=N, max_depth=4, random_state=0),
    "XGBClassifier base_score": lambda: xgboost.XGBClassifier(n_estimators=N, max_depth=3, base_score=0.3, random_state=0),
    "LGBMClassifier": lambda: lightgbm.LGBMClassifier(n_estimators=N, num_leaves=15, min_child_samples=5, verbose=-1),
}
REGRESSORS = {
    "GradientBoostingRegressor squared_error": lambda: GradientBoostingRegressor(n_estimators=N, random_state=0),
    "GradientBoostingRegressor absolute_error": lambda: GradientBoostingRegressor(
        n_estimators=N, loss="absolute_error", random_state=0),
    "GradientBoostingRegressor huber": lambda: GradientBoostingRegressor(n_estimators=N, loss="huber", random_state=0),
    "GradientBoostingRegressor quantile": lambda: GradientBoostingRegressor(
        n_estimators=N, loss="quantile", alpha=0.8, random_state=0),
    "HistGradientBoostingRegressor": lambda: HistGradientBoostingRegressor(max_iter=N, random_state=0),
    "HistGradientBoostingRegressor poisson": lambda: HistGradientBoostingRegressor(
        max_iter=N, loss="poisson", random_state=0),
    "HistGradientBoostingRegressor quantile": lambda: HistGradientBoostingRegressor(
        max_iter=N, loss="quantile", quantile=0.3, random_state=0),
    "XGBRegressor": lambda: xgboost.XGBRegressor(n_estimators=N, max_depth=4, random_state=0),
    "XGBRegressor poisson": lambda: xgboost.XGBRegressor(n_estimators=N, objective="count:poisson", random_state=0),
    "LGBMRegressor": lambda: lightgbm.LGBMRegressor(n_estimators=N, num_leaves=15, verbose=-1),
    "LGBMRegressor poisson": lambda: lightgbm.LGBMRegressor(n_estimators=N, objective="poisson", verbose=-1),
}


def split(load, dtype, positive=False):
    X, y = load(return_X_y=True)
    if positive:
        y = y - y.min() + 1
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=42)
    if dtype == "int16":
        X_train, X_test = int16_scaled(X_train, X_test)
        return X_train, X_test, y_train
    return X_train.astype(np.float32), X_test.astype(np.float32), y_train


def threshold_rows(stored, X, limit=1500, seed=0):
    """Rows of X with one feature set on and next to stored thresholds (a sample of nodes when there are many)."""
    rng = np.random.default_rng(seed)
    nodes = np.arange(stored.n_nodes)
    if len(nodes) * 3 > limit:
        nodes = rng.choice(nodes, limit // 3, replace=False)
    base = X[rng.integers(0, len(X), len(nodes) * 3)].copy()
    for i, n in enumerate(nodes):
        f, t = stored.feature[n], stored.threshold[n]
        if stored.dtype == "float32":
            values = [t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.float32(np.inf))]
        else:
            values = [t, t + 1 if t < 32767 else t, t - 1 if t > -32768 else t]
        for j, v in enumerate(values):
            if np.isfinite(v):
                base[3 * i + j, f] = v
    return base


def with_nan(X, seed=1):
    rng = np.random.default_rng(seed)
    X = np.array(X, dtype=np.float32)
    X[rng.random(X.shape) < 0.15] = np.nan
    return X


def library_predict(model, X):
    if isinstance(model, xgboost.Booster):
        return model.predict(xgboost.DMatrix(X))
    return model.predict(X)


def check(model, stored, X, tmp_path, counts):
    """Library == mirror (classes exactly; proba and values within tolerance) and mirror == device (bits)."""
    X64 = np.asarray(X, dtype=np.float64)  # the same values the device gets, as float64
    path = tmp_path / "model.csv"
    trees_format.save(stored, path)
    pred, proba = device.predict_trees(path, X, stored)
    expected = library_predict(model, X64 if not isinstance(model, (GradientBoostingClassifier, GradientBoostingRegressor)) else X64)
    if stored.kind == "classifier":
        assert np.array_equal(stored.classes[pred], expected), "device classes differ from the library's"
        np.testing.assert_array_equal(pred, stored.predict_index(X))
        np.testing.assert_array_equal(proba.view(np.uint32), stored.predict_proba(X).view(np.uint32))
        np.testing.assert_allclose(proba, model.predict_proba(X64), rtol=PROBA_RTOL, atol=PROBA_ATOL)
    else:
        np.testing.assert_array_equal(pred.view(np.uint32), stored.predict_index(X).astype(np.float32).view(np.uint32))
        np.testing.assert_allclose(pred, expected, rtol=VALUE_RTOL, atol=1e-6)
    counts.append(len(X))


@pytest.fixture(scope="module")
def counts():
    seen = []
    yield seen
    print("\nboosting parity: %d rows on the device equal to the libraries' predictions" % sum(seen))


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("dataset", list(CLASSIFICATION))
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_parity(emltrees_x64, tmp_path, counts, name, dataset, dtype):
    if "exponential" in name and dataset in ("iris", "wine", "digits"):
        pytest.skip("the exponential loss is binary only")
    X_train, X_test, y_train = split(CLASSIFICATION[dataset], dtype)
    model = CLASSIFIERS[name]().fit(X_train, y_train)
    stored = trees.lower(mpyml.convert(model), dtype=dtype)
    X = np.concatenate([X_test, threshold_rows(stored, X_test)])
    if dtype == "float32":
        X = np.concatenate([X, with_nan(X_test)]) if "GradientBoostingClassifier" not in name else X
    check(model, stored, X, tmp_path, counts)


@pytest.mark.parametrize("dtype", ["float32", "int16"])
@pytest.mark.parametrize("dataset", list(REGRESSION))
@pytest.mark.parametrize("name", list(REGRESSORS))
def test_regressor_parity(emltrees_x64, tmp_path, counts, name, dataset, dtype):
    X_train, X_test, y_train = split(REGRESSION[dataset], dtype, positive="poisson" in name)
    model = REGRESSORS[name]().fit(X_train, y_train)
    stored = trees.lower(mpyml.convert(model), dtype=dtype)
    X = np.concatenate([X_test, threshold_rows(stored, X_test)])
    if dtype == "float32" and "GradientBoostingRegressor" not in name:
        X = np.concatenate([X, with_nan(X_test)])
    check(model, stored, X, tmp_path, counts)


@pytest.mark.parametrize("dataset", ["breast_cancer", "iris", "diabetes"])
def test_boosters(emltrees_x64, tmp_path, counts, dataset):
    """xgboost.Booster and lightgbm.Booster (trained with train()): classes 0..K-1 for classification objectives."""
    load = {"breast_cancer": load_breast_cancer, "iris": load_iris, "diabetes": load_diabetes}[dataset]
    X_train, X_test, y_train = split(load, "float32")
    objective = {"breast_cancer": ("binary:logistic", "binary"), "iris": ("multi:softprob", "multiclass"),
                 "diabetes": ("reg:squarederror", "regression")}[dataset]
    params = {"objective": objective[0], "max_depth": 3}
    if dataset == "iris":
        params["num_class"] = 3
    xgb = xgboost.train(params, xgboost.DMatrix(X_train, label=y_train), num_boost_round=N)
    lparams = {"objective": objective[1], "verbose": -1, "num_leaves": 7}
    if dataset == "iris":
        lparams["num_class"] = 3
    lgb = lightgbm.train(lparams, lightgbm.Dataset(X_train, label=y_train), num_boost_round=N)
    X = np.concatenate([X_test, with_nan(X_test)])
    for booster in (xgb, lgb):
        stored = trees.lower(mpyml.convert(booster), dtype="float32")
        path = tmp_path / "booster.csv"
        trees_format.save(stored, path)
        pred, proba = device.predict_trees(path, X, stored)
        raw = booster.predict(xgboost.DMatrix(X)) if booster is xgb else booster.predict(X)
        if stored.kind == "classifier":
            expected = (raw > 0.5).astype(int) if raw.ndim == 1 else np.argmax(raw, axis=1)
            np.testing.assert_array_equal(pred, expected)
            p1 = proba[:, 1] if raw.ndim == 1 else proba
            np.testing.assert_allclose(p1, raw, rtol=PROBA_RTOL, atol=PROBA_ATOL)
        else:
            np.testing.assert_allclose(pred, raw, rtol=VALUE_RTOL, atol=1e-6)
        counts.append(len(X))


# ---------------------------------------------------------------- near ties


def _set_leaves(values_per_stage, gb):
    """Overwrites the leaf values of a fitted GradientBoosting's stumps (value arrays are writable views)."""
    for stage, values in enumerate(values_per_stage):
        tree = gb.estimators_[stage, 0].tree_
        leaves = np.flatnonzero(tree.children_left < 0)
        tree.value[leaves, 0, 0] = values


@pytest.mark.parametrize("leaf_values", [
    [0.1, 0.2, -0.3],              # float64 sum 5.6e-17 > 0, float32 sum 0: the float32 sums cannot decide
    [0.5, 0.25, -0.75],            # exactly 0: GradientBoosting says class 1 (raw >= 0)
    [-0.1, -0.2, 0.3],             # -5.6e-17: class 0
    [1e8, 1.0, -1e8],              # float32 loses the 1.0 entirely
])
def test_gradient_boosting_ties(emltrees_x64, tmp_path, leaf_values):
    """A binary GradientBoostingClassifier whose raw score is 0 or within float32's error of it: the device
    decides as scikit-learn's float64 sum (raw >= 0)."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]] * 4)
    y = np.array([0, 1, 0, 1] * 4)
    gb = GradientBoostingClassifier(n_estimators=3, max_depth=1, learning_rate=1.0, init="zero").fit(X, y)
    _set_leaves([[v, v] for v in leaf_values], gb)
    stored = trees.lower(mpyml.convert(gb), dtype="float32")
    path = tmp_path / "ties.csv"
    trees_format.save(stored, path)
    pred, _ = device.predict_trees(path, X[:4], stored)
    assert list(gb.classes_[pred]) == list(gb.predict(X[:4]))
    raw = sum(leaf_values)
    assert list(pred) == [int(raw >= 0)] * 4


def test_hist_gradient_boosting_ties(emltrees_x64, tmp_path):
    """HistGradientBoosting: raw exactly 0 is class 0 (raw > 0); a multiclass tie goes to the first class."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]] * 8)
    for y, values in ((np.array([0, 1, 0, 1] * 8), [0.5, 0.25, -0.75]), (np.array([0, 1, 2, 1] * 8), None)):
        hgb = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=2, learning_rate=1.0, min_samples_leaf=1,
                                             early_stopping=False).fit(X, y)
        for i, iteration in enumerate(hgb._predictors):
            for k, predictor in enumerate(iteration):
                leaf = predictor.nodes["is_leaf"].astype(bool)
                predictor.nodes["value"][leaf] = values[i] if values else [0.1, 0.2, -0.3][i]
        hgb._baseline_prediction[:] = 0
        stored = trees.lower(mpyml.convert(hgb), dtype="float32")
        path = tmp_path / "hgb.csv"
        trees_format.save(stored, path)
        pred, _ = device.predict_trees(path, X[:4], stored)
        assert list(hgb.classes_[pred]) == list(hgb.predict(X[:4]))
        assert list(pred) == [0] * 4


def test_xgboost_binary_threshold():
    """The stored threshold is XGBoost's own: sigmoid(t) <= 0.5 < sigmoid(next float32 after t)."""
    t = np.float32(boosting._xgb_binary_threshold("binary:logistic"))
    dtrain = xgboost.DMatrix(np.zeros((2, 1), dtype=np.float32), label=[0.0, 1.0])
    empty = xgboost.train({"objective": "binary:logistic"}, dtrain, num_boost_round=0)
    margins = np.array([t, np.nextafter(t, np.float32(1))], dtype=np.float32)
    p = empty.predict(xgboost.DMatrix(np.zeros((2, 1), dtype=np.float32), base_margin=margins))
    assert p[0] <= 0.5 < p[1]


def test_lightgbm_binary_threshold():
    """The stored threshold is LightGBM's own: a one-tree model with leaf values t and the next double
    after t, predicted by LightGBM (p) and decided as LGBMClassifier.predict (p > 1 - p)."""
    import re

    t = boosting._lgb_binary_threshold(1.0)
    X = np.array([[0.0], [1.0]] * 20)
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 2, "min_data_in_leaf": 1,
                              "min_data_in_bin": 1}, lightgbm.Dataset(X, label=[0, 1] * 20), 1)
    text = re.sub(r"leaf_value=[^\n]*", "leaf_value=%r %r" % (t, float(np.nextafter(t, 1.0))),
                  booster.model_to_string())
    p = lightgbm.Booster(model_str=text).predict(np.array([[0.0], [1.0]]), raw_score=False)
    assert list(p > 1.0 - p) == [False, True]


# ---------------------------------------------------------------- pipelines


def test_pipelines(emltrees_x64, tmp_path):
    """Boosted models as a Pipeline's final estimator: scalers folded (float64 comparisons for HGB and
    LightGBM), PCA run on the device before the trees."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    X, y = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    for final in (HistGradientBoostingClassifier(max_iter=N), lightgbm.LGBMClassifier(n_estimators=N, verbose=-1),
                  xgboost.XGBClassifier(n_estimators=N), GradientBoostingClassifier(n_estimators=N)):
        for steps in ([StandardScaler()], [MinMaxScaler()], [StandardScaler(), PCA(5, random_state=0)]):
            pipe = make_pipeline(*steps, final).fit(X, y)
            path = tmp_path / "pipe.csv"
            stored = mpyml.export(pipe, path, input_dtype="float32") if len(steps) == 1 else mpyml.export(pipe, path)
            model = getattr(stored, "model", stored)
            pred, _ = device.predict_trees(path, X, stored if len(steps) == 1 else _Raw(model, X.shape[1]))
            agree = np.mean(model.classes[pred] == pipe.predict(X))
            if len(steps) == 1:
                assert agree == 1.0, (type(final).__name__, steps)
            else:
                assert agree >= 0.97, (type(final).__name__, steps, agree)


class _Raw:
    """device.predict_trees' view of a stored pipeline with steps: raw float32 features in."""

    def __init__(self, model, n_features):
        self.model, self.n_features = model, n_features
        self.kind, self.n_classes, self.dtype = model.kind, model.n_classes, "float32"
        self.n_trees, self.n_nodes, self.n_leaves = model.n_trees, model.n_nodes, model.n_leaves

    def cast_features(self, X):
        return np.asarray(X, dtype=np.float32)


# ---------------------------------------------------------------- bad input


def _fit(model, X=None, y=None):
    if X is None:
        X, y = load_iris(return_X_y=True)
    return model.fit(X, y)


def test_refuses_unsupported_options():
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    cases = [
        (GradientBoostingRegressor(n_estimators=2, init=LinearRegression()).fit(X, y), "init=LinearRegression"),
        (HistGradientBoostingClassifier(max_iter=2, categorical_features=[0]).fit(
            np.c_[np.arange(len(Xc)) % 3, Xc[:, :3]], yc), "categorical"),
        (xgboost.XGBClassifier(n_estimators=2, booster="dart").fit(Xc, yc), "booster='dart'"),
        (xgboost.XGBClassifier(n_estimators=2, booster="gblinear").fit(Xc, yc), "booster='gblinear'"),
        (xgboost.XGBClassifier(n_estimators=2, objective="multi:softmax").fit(*load_iris(return_X_y=True)),
         "multi:softmax"),
        (xgboost.XGBRegressor(n_estimators=2).fit(X, np.c_[y, y]), "multi-output"),
        (xgboost.XGBClassifier(n_estimators=2, missing=0.0).fit(Xc, yc), "missing=0.0"),
        (lightgbm.LGBMRegressor(n_estimators=2, linear_tree=True, verbose=-1).fit(X, y), "linear trees"),
        (lightgbm.LGBMClassifier(n_estimators=2, boosting_type="rf", subsample=0.5, subsample_freq=1,
                                 verbose=-1).fit(Xc, yc), "boosting='rf'"),
    ]
    import pandas as pd

    codes = np.arange(len(Xc)) % 5
    frame, yf = pd.DataFrame({"c": pd.Categorical(codes), "x": Xc[:, 0]}), np.isin(codes, [1, 3]).astype(int)
    cases.append((lightgbm.LGBMClassifier(n_estimators=3, verbose=-1, min_child_samples=2).fit(frame, yf),
                  "categorical splits"))
    cases.append((xgboost.XGBClassifier(n_estimators=2, enable_categorical=True, tree_method="hist").fit(frame, yf),
                  "categorical splits"))
    zeros = np.where(np.abs(Xc - Xc.mean(axis=0)) < Xc.std(axis=0), 0.0, Xc)  # a zero-as-missing split left of 0
    zero_model = lightgbm.LGBMClassifier(n_estimators=20, zero_as_missing=True, verbose=-1).fit(zeros, yc)
    cases.append((zero_model, "that sends zeros and NaN"))
    for model, expected in cases:
        with pytest.raises(ExportError, match=expected.replace("(", r"\(")) as error:
            mpyml.convert(model)
        assert type(model).__name__ in str(error.value), (expected, str(error.value))


BAD_FILES = {
    "truncated": lambda text: text[: len(text) // 2],
    "link": lambda text: text.replace("boost,softmax", "boost,probit"),
    "group past n_groups": lambda text: _reseal(text.replace("\n0,0\n", "\n0,7\n", 1)),
    "float32 leaf not hex": lambda text: _reseal(text.replace("\nleaves\n", "\nleaves\n1.5\n", 1), drop_leaf=True),
    "groups for a regressor": lambda text: _reseal(text.replace("boost,softmax,3", "boost,softmax,2")),
}


def _reseal(text, drop_leaf=False):
    from mpyml.formats import records

    lines = text.splitlines()[:-1]
    if drop_leaf:
        lines.pop()
    return records.seal("\n".join(lines) + "\n")


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_model_files(emltrees_x64, tmp_path, case):
    X, y = load_iris(return_X_y=True)
    stored = trees.lower(mpyml.convert(xgboost.XGBClassifier(n_estimators=2).fit(X, y)), dtype="float32")
    text = BAD_FILES[case](trees_format.dumps(stored))
    path = tmp_path / "bad.csv"
    path.write_text(text)
    out = device.run("import emltrees\nm = emltrees.new(10, 100, 100)\ntry:\n"
                     "    emltrees.load_model(m, %r)\nexcept ValueError as e:\n    print('refused', e)\nprint(m.loaded)\n"
                     % str(path))
    assert "refused" in out and out.strip().endswith("False"), out


def test_capacity(emltrees_x64, tmp_path):
    X, y = load_iris(return_X_y=True)
    stored = trees.lower(mpyml.convert(HistGradientBoostingClassifier(max_iter=3).fit(X, y)), dtype="float32")
    path = tmp_path / "m.csv"
    trees_format.save(stored, path)
    out = device.run("import emltrees\nm = emltrees.new(%d, 10, 10)\ntry:\n    emltrees.load_model(m, %r)\n"
                     "except ValueError as e:\n    print(e)\n" % (stored.n_trees, str(path)))
    assert "capacity" in out


def test_file_round_trip():
    X, y = load_iris(return_X_y=True)
    for model in (HistGradientBoostingClassifier(max_iter=3).fit(X, y), xgboost.XGBClassifier(n_estimators=3).fit(X, y)):
        stored = trees.lower(mpyml.convert(model), dtype="float32")
        again = trees_format.read(trees_format.dumps(stored))
        np.testing.assert_array_equal(again.predict_index(X), stored.predict_index(X))
        np.testing.assert_array_equal(again.predict_proba(X), stored.predict_proba(X))
        assert again.ram_bytes() == stored.ram_bytes()


def test_device_attributes_and_no_allocation(emltrees_x64, tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    stored = trees.lower(mpyml.convert(HistGradientBoostingClassifier(max_iter=5).fit(X, y)), dtype="float32")
    path = tmp_path / "m.csv"
    trees_format.save(stored, path)
    out = device.run(
        "import array, gc, emltrees\nm = emltrees.new(%d, %d, %d)\nemltrees.load_model(m, %r)\n"
        "print(m.kind, m.voting, m.n_classes, m.n_trees)\n"
        "x = array.array('f', [1.0] * 30)\nout = array.array('f', [0.0, 0.0])\n"
        "def calls():\n    for _ in range(50):\n        m.predict(x)\n        m.predict_proba(x, out)\n"
        "calls()\ngc.collect()\na = gc.mem_alloc()\ncalls()\nprint(gc.mem_alloc() - a)\n" % (stored.n_trees, stored.n_nodes, stored.n_leaves, str(path)))
    lines = out.split()
    assert lines[:4] == ["classifier", "boost", "2", "5"]
    assert lines[4] == "0"


# ---------------------------------------------------------------- the C core under ASan and UBSan


def _driver_lines(stored, rows):
    """tests/c/trees_driver.c records of a boosted forest: tree and node records from the model file's text."""
    from test_c_core import hex32, hex64, layout_line, row_text

    text = trees_format.dumps(stored).splitlines()
    t, n, l = text.index("trees"), text.index("nodes"), text.index("leaves")
    b = stored.boost
    link = trees.LINKS.index(b.link)
    lines = [layout_line(stored), "forest 6 %d %d %d %d %d %d %s %d %d %d" % (
        1 if stored.dtype == "int16" else 2, stored.n_features, stored.n_classes, stored.n_trees, stored.n_nodes,
        stored.n_leaves, hex32(stored.tree_weight), b.n_groups, link, 1 if stored.leaf_kind == "float64" else 0),
        "boost %s %s %s" % (hex64(b.threshold), hex64(b.scale), hex64(b.offset))]
    lines += ["base " + hex64(v) for v in b.base]
    lines += ["btree " + record.replace(",", " ") for record in text[t + 1:n]]
    lines += ["node " + record.replace(",", " ") for record in text[n + 1:l]]
    lines += ["bleaf " + hex64(v) for v in stored.leaves[:, 0]]
    lines += ["done"] + [row_text(stored.dtype, row) for row in rows] + ["end"]
    return lines


@pytest.mark.parametrize("name", ["HistGradientBoostingClassifier", "XGBClassifier", "LGBMClassifier",
                                  "GradientBoostingClassifier exponential", "HistGradientBoostingRegressor poisson",
                                  "XGBRegressor", "IsolationForest"])
@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_c_core_boosting(driver, driver_o2, name, dtype):
    """The boosting kind of mpyml_trees.h built for the host with ASan and UBSan (-O0 and -O2): classes,
    decision_function and probabilities (IsolationForest: score_samples) bit for bit as the numpy mirror."""
    from sklearn.ensemble import IsolationForest
    from test_c_core import run

    load = load_breast_cancer if "Classifier" in name or name == "IsolationForest" else load_diabetes
    if name in ("HistGradientBoostingClassifier", "XGBClassifier"):
        load = load_wine
    X_train, X_test, y_train = split(load, dtype, positive="poisson" in name)
    model = (IsolationForest(n_estimators=20, random_state=0).fit(X_train) if name == "IsolationForest"
             else (CLASSIFIERS.get(name) or REGRESSORS[name])().fit(X_train, y_train))
    stored = trees.lower(mpyml.convert(model), dtype=dtype)
    X = np.concatenate([X_test, threshold_rows(stored, X_test, limit=300)])
    if dtype == "float32":
        X = np.concatenate([X, with_nan(X_test[:40])])
    X = stored.cast_features(X)
    for exe in (driver, driver_o2):
        out = run(exe, "\n".join(_driver_lines(stored, X)) + "\n").out
        assert out[1] == "ready" and out[0] == "bytes %d" % stored.ram_bytes(), out[:2]
        rows = [line.split() for line in out[2:-1]]
        if stored.kind == "regressor":
            values = np.array([int(r[0], 16) for r in rows], dtype=np.uint32)
            np.testing.assert_array_equal(values, stored.predict_index(X).astype(np.float32).view(np.uint32))
            continue
        np.testing.assert_array_equal([int(r[0]) for r in rows], stored.predict_index(X))
        g = stored.boost.n_groups
        decision = np.array([[int(v, 16) for v in r[1:1 + g]] for r in rows], dtype=np.uint32)
        np.testing.assert_array_equal(decision, stored.decision_function(X).astype(np.float32).view(np.uint32))
        second = np.array([[int(v, 16) for v in r[1 + g:]] for r in rows], dtype=np.uint32)
        expected = stored.score_samples(X)[:, None] if name == "IsolationForest" else stored.predict_proba(X)
        np.testing.assert_array_equal(second, expected.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("objective", ["multi:softprob", "binary:logistic", "reg:squarederror"])
def test_xgboost_after_early_stopping(emltrees_x64, tmp_path, counts, objective):
    """The sklearn wrapper predicts with the trees up to best_iteration; the exporter takes those trees but
    found base_score from margins of all the trees, so it refused the model ('could not reproduce the
    model's margins from its trees (base_score)')."""
    X, y = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    if objective == "binary:logistic":
        y = (y > 0).astype(int)
    make = xgboost.XGBRegressor if objective.startswith("reg") else xgboost.XGBClassifier
    model = make(n_estimators=200, max_depth=3, early_stopping_rounds=2, objective=objective, random_state=0)
    model.fit(X[::2], y[::2], eval_set=[(X[1::2], y[1::2])], verbose=False)
    assert 0 < model.best_iteration < 199  # it stopped early
    stored = trees.lower(mpyml.convert(model), dtype="float32")
    check(model, stored, np.concatenate([X, threshold_rows(stored, X)]), tmp_path, counts)


def test_xgboost_fitted_on_a_dataframe(emltrees_x64, tmp_path, counts):
    """An XGBClassifier fitted on a DataFrame refuses unnamed rows: the exporter's probe of its margins raised
    XGBoost's 'data did not contain feature names', and verify could not ask it to predict X.npy either."""
    import pandas as pd

    from mpyml import verify

    X, y = load_wine(return_X_y=True)
    X = X.astype(np.float32)
    frame = pd.DataFrame(X, columns=["f%d" % i for i in range(X.shape[1])])
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, random_state=0).fit(frame, y)
    stored = trees.lower(mpyml.convert(model), dtype="float32")
    assert list(stored.feature_names) == list(frame.columns)
    report = verify.verify_file(model, X, tmp_path / "m.csv", progress=False)
    assert report.ok and report.n_agree == len(X), report.summary()
