"""Gradient-boosted trees converted into the forest IR (mpyml.trees.Forest with a Boost).

A boosted model's raw score for output group k is base[k] plus the sum of the leaf
values of the trees of group k; each library then turns raw scores into predictions
its own way. The converters read every library's own fitted structures:

- scikit-learn GradientBoostingClassifier / Regressor: trees of ``estimators_``
  (features cast to float32, ``x <= threshold``), leaf contribution
  ``learning_rate * value`` (the float64 product scikit-learn adds), float64 sums
  from the init estimator's constant; binary ``predict`` is ``raw >= 0``.
- scikit-learn HistGradientBoostingClassifier / Regressor: ``_predictors`` (float64
  features, ``x <= threshold``, NaN to ``missing_go_to_left``; values include the
  learning rate), float64 sums from ``_baseline_prediction``; binary ``raw > 0``.
- XGBoost (tree boosters): the JSON model (``x < split`` on float32 features, NaN to
  the node's default side), float32 sums starting at the margin of ``base_score``;
  binary ``predict`` is ``sigmoid(margin) > 0.5`` in XGBoost's float32 arithmetic.
- LightGBM: ``dump_model()`` (float64 features, ``x <= threshold``, NaN and zero per
  ``missing_type`` and ``default_left``), float64 sums; binary ``predict`` is
  ``p > 1 - p`` with LightGBM's float64 sigmoid.

Binary decisions are stored as one threshold on the raw score (class 1 when
``raw > threshold``), found on the host from the library's own rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .errors import ExportError
from .trees import CLASSIFIER, REGRESSOR, Forest, Tree, _tree_from_sklearn

F32 = np.float32


@dataclass
class Boost:
    """How a boosted forest turns leaf values into predictions (see the module docstring)."""

    sums: str  # "float64" (scikit-learn, LightGBM) or "float32" (XGBoost): the library's sum precision
    link: str  # mpyml.trees.LINKS: regressors predict link(scale * raw); classifiers' predict_proba
    scale: float  # factor on the raw score before the link (exponential loss: 2, LightGBM's sigmoid)
    base: np.ndarray  # float64 per group: the sum's starting value
    groups: np.ndarray  # int64 per tree: the output group the tree adds to
    threshold: float  # binary classifiers: class 1 exactly when raw > threshold
    compare64: bool = False  # the library compares float64 features (HGB, LightGBM), not float32 ones
    offset: float = 0.0  # IsolationForest: offset_, decision_function = score_samples - offset

    @property
    def n_groups(self) -> int:
        return len(self.base)


def _classes(estimator, kind):
    return np.asarray(estimator.classes_) if kind == CLASSIFIER else None


def _feature_names(estimator):
    names = getattr(estimator, "feature_names_in_", None)
    return None if names is None else np.asarray(names)


def _value_tree(tree: Tree, values: np.ndarray) -> Tree:
    return Tree(feature=tree.feature, threshold=tree.threshold, left=tree.left, right=tree.right,
                value=np.asarray(values, dtype=np.float64).reshape(-1, 1), nan_left=tree.nan_left)


# ---------------------------------------------------------------- scikit-learn GradientBoosting

_GB_CONSTANT_INIT = {"DummyClassifier": ("prior", "most_frequent", "constant"),
                     "DummyRegressor": ("mean", "median", "quantile", "constant")}


def gradient_boosting_from_sklearn(estimator) -> Forest:
    """GradientBoostingClassifier (log_loss, exponential) or GradientBoostingRegressor (every loss):
    ExportError for an init estimator that scikit-learn does not store as a constant."""
    from sklearn.base import is_classifier
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    name = type(estimator).__name__
    kind = CLASSIFIER if is_classifier(estimator) else REGRESSOR
    init = estimator.init_
    if not (isinstance(init, str) and init == "zero"):
        allowed = _GB_CONSTANT_INIT.get(type(init).__name__)
        if allowed is None or type(init).__module__ != "sklearn.dummy" or init.strategy not in allowed:
            raise ExportError("%s: init=%s is not supported (only 'zero' and the constant DummyClassifier/DummyRegressor "
                              "scikit-learn uses by default)" % (name, type(init).__name__))
    n_features = int(estimator.n_features_in_)
    base = np.asarray(estimator._raw_predict_init(np.zeros((1, n_features), dtype=np.float32)), dtype=np.float64)[0]
    n_stages, n_groups = estimator.estimators_.shape
    lr = float(estimator.learning_rate)
    trees, groups = [], []
    for i in range(n_stages):
        for k in range(n_groups):
            tree = _tree_from_sklearn(estimator.estimators_[i, k].tree_, REGRESSOR)
            trees.append(_value_tree(tree, lr * tree.value[:, 0]))  # predict_stages adds scale * value, in float64
            groups.append(k)
    link, scale = "identity", 1.0
    if kind == CLASSIFIER:
        loss = estimator.loss
        link = "logistic" if n_groups == 1 else "softmax"
        scale = 2.0 if loss == "exponential" else 1.0  # ExponentialLoss.predict_proba: expit(2 * raw)
    boost = Boost(sums="float64", link=link, scale=scale, base=base, groups=np.array(groups, dtype=np.int64),
                  threshold=float(np.nextafter(0.0, -1.0)))  # predict: raw >= 0 is class 1
    classes = _classes(estimator, kind)
    return Forest(kind=kind, n_features=n_features, n_classes=0 if classes is None else len(classes), trees=trees,
                  classes=classes, feature_names=_feature_names(estimator), boost=boost)


# ---------------------------------------------------------------- scikit-learn HistGradientBoosting

_HGB_LINKS = {"IdentityLink": "identity", "LogLink": "exp", "LogitLink": "logistic", "MultinomialLogit": "softmax"}


def hist_gradient_boosting_from_sklearn(estimator) -> Forest:
    """HistGradientBoostingClassifier / Regressor on numeric features (NaN to the learned side);
    ExportError for categorical features."""
    from sklearn.base import is_classifier
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    name = type(estimator).__name__
    kind = CLASSIFIER if is_classifier(estimator) else REGRESSOR
    categorical = getattr(estimator, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        raise ExportError("%s: categorical features (categorical_features) are not supported; encode them as numbers"
                          % name)
    link = _HGB_LINKS.get(type(estimator._loss.link).__name__)
    if link is None:
        raise ExportError("%s: loss %r is not supported" % (name, estimator.loss))
    base = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
    trees, groups = [], []
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise ExportError("%s: categorical splits are not supported" % name)
            leaf = nodes["is_leaf"].astype(bool)
            left = np.where(leaf, -1, nodes["left"].astype(np.int64))
            right = np.where(leaf, -1, nodes["right"].astype(np.int64))
            trees.append(Tree(feature=np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)),
                              threshold=np.where(leaf, -2.0, nodes["num_threshold"]).astype(np.float64),
                              left=left, right=right, value=nodes["value"].astype(np.float64).reshape(-1, 1),
                              nan_left=nodes["missing_go_to_left"].astype(bool)))
            groups.append(k)
    # The raw score starts at 0 + baseline, which is the baseline.
    boost = Boost(sums="float64", link=link, scale=1.0, base=base, groups=np.array(groups, dtype=np.int64),
                  threshold=0.0, compare64=True)  # predict: raw > 0 is class 1
    classes = _classes(estimator, kind)
    return Forest(kind=kind, n_features=int(estimator.n_features_in_), n_classes=0 if classes is None else len(classes),
                  trees=trees, classes=classes, feature_names=_feature_names(estimator), boost=boost)


# ---------------------------------------------------------------- XGBoost

_XGB_OBJECTIVES = {
    "binary:logistic": (CLASSIFIER, "logistic"),
    "multi:softprob": (CLASSIFIER, "softmax"),
    "reg:squarederror": (REGRESSOR, "identity"),
    "reg:absoluteerror": (REGRESSOR, "identity"),
    "reg:pseudohubererror": (REGRESSOR, "identity"),
    "reg:logistic": (REGRESSOR, "logistic"),
    "count:poisson": (REGRESSOR, "exp"),
    "reg:gamma": (REGRESSOR, "exp"),
    "reg:tweedie": (REGRESSOR, "exp"),
}


def _xgb_margin_base(booster, trees, groups, n_groups, n_features, base_scores, link, iteration_range=(0, 0)):
    """The float32 starting value of XGBoost's margin sums (base_score in margin space): the value whose
    float32 sums give XGBoost's own output_margin bit for bit on probe rows, predicted with the same trees
    (`iteration_range`: those the sklearn wrapper predicts with after early stopping; (0, 0) all)."""
    import xgboost

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, n_features)).astype(np.float32) * 4
    X[0] = 0
    # named as the booster's features: a model fitted on a DataFrame refuses unnamed rows
    probe = xgboost.DMatrix(X, feature_names=booster.feature_names, feature_types=booster.feature_types)
    margins = np.asarray(booster.predict(probe, output_margin=True, iteration_range=iteration_range),
                         dtype=np.float32).reshape(len(X), -1)
    # The leaf of every probe row in every tree, with the library's `x < split` (NaN-free probes).
    sums = []
    for k in range(n_groups):
        leaf_values = []
        for tree, g in zip(trees, groups):
            if g == k:
                leaf_values.append(_walk_values(tree, X))
        sums.append(leaf_values)

    def candidate_ok(k, base):
        s = np.full(len(X), base, dtype=np.float32)
        for v in sums[k]:
            s = (s + v).astype(np.float32)
        return np.array_equal(s, margins[:, k])

    out = []
    for k in range(n_groups):
        # Candidates: base_score mapped to margin space by the objective's link, and the margin minus the
        # float64 sum of the leaves; then their float32 neighbours.
        rest = sum(float(v[0]) for v in sums[k])
        user = float(base_scores[k if len(base_scores) > 1 else 0])
        with np.errstate(all="ignore"):
            mapped = {"logistic": np.log(user / (1 - user)) if 0 < user < 1 else 0.0, "softmax": user,
                      "exp": np.log(user) if user > 0 else 0.0}.get(link, user)
        found = None
        for guess in (F32(mapped), F32(float(margins[0, k]) - rest), F32(0)):
            up = down = guess
            for _ in range(256):
                for c in (up, down):
                    if candidate_ok(k, c):
                        found = c
                        break
                if found is not None:
                    break
                up, down = np.nextafter(up, F32(np.inf)), np.nextafter(down, F32(-np.inf))
            if found is not None:
                break
        if found is None:
            raise ExportError("XGBoost: could not reproduce the model's margins from its trees (base_score)")
        out.append(float(found))
    return np.array(out, dtype=np.float64)


def _walk_values(tree: Tree, X) -> np.ndarray:
    """float32 leaf value per row of a tree in `x <= threshold` form (NaN-free X)."""
    X = np.asarray(X, dtype=np.float32)
    node = np.zeros(len(X), dtype=np.int64)
    rows = np.arange(len(X))
    while True:
        inner = tree.left[node] >= 0
        if not inner.any():
            return tree.value[node, 0].astype(np.float32)
        n = node[inner]
        go_left = X[rows[inner], tree.feature[n]].astype(np.float64) <= tree.threshold[n]
        node[inner] = np.where(go_left, tree.left[n], tree.right[n])


def _xgb_binary_threshold(objective_json) -> float:
    """The largest float32 margin m that XGBClassifier.predict calls class 0 (sigmoid(m) <= 0.5 in XGBoost's
    float32 arithmetic), found by bisection on a booster without trees that XGBoost evaluates at margin m."""
    import xgboost

    dtrain = xgboost.DMatrix(np.zeros((2, 1), dtype=np.float32), label=[0.0, 1.0])
    empty = xgboost.train({"objective": "binary:logistic"}, dtrain, num_boost_round=0)

    def prob(m32):
        d = xgboost.DMatrix(np.zeros((len(m32), 1), dtype=np.float32), base_margin=np.asarray(m32, dtype=np.float32))
        return np.asarray(empty.predict(d), dtype=np.float32)

    if not prob([np.float32(-1.0)])[0] <= 0.5 < prob([np.float32(1.0)])[0]:
        raise ExportError("XGBoost: unexpected sigmoid at margin -1 / 1")
    return _largest_where(lambda m: prob([m])[0] <= 0.5, -1.0, 1.0, np.float32)


def _xgb_booster(model):
    import xgboost

    if isinstance(model, xgboost.Booster):
        return model, None
    return model.get_booster(), model


def xgboost_from_model(model) -> Forest:
    """XGBClassifier, XGBRegressor or a Booster with a tree booster (gbtree): ExportError for dart and
    linear boosters, categorical splits, multi-output models, a `missing` other than NaN and
    unsupported objectives."""
    booster, wrapper = _xgb_booster(model)
    name = type(model).__name__
    if wrapper is not None and wrapper.missing is not None and not (isinstance(wrapper.missing, float) and math.isnan(wrapper.missing)):
        raise ExportError("%s: missing=%r is not supported (only NaN marks a missing value on the device)" % (name, wrapper.missing))
    learner = json.loads(booster.save_raw(raw_format="json"))["learner"]
    gradient_booster = learner["gradient_booster"]
    if gradient_booster["name"] != "gbtree":
        raise ExportError("%s: booster=%r is not supported (only 'gbtree')" % (name, gradient_booster["name"]))
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1:
        raise ExportError("%s: multi-output models are not supported (num_target=%s)" % (name, params["num_target"]))
    objective = learner["objective"]["name"]
    if objective not in _XGB_OBJECTIVES:
        raise ExportError("%s: objective %r is not supported; supported: %s" % (name, objective, ", ".join(_XGB_OBJECTIVES)))
    kind, link = _XGB_OBJECTIVES[objective]
    gbtree = gradient_booster["model"]
    n_groups = max(1, int(params.get("num_class", "0")))
    n_features = int(params["num_feature"])
    tree_info = gbtree["tree_info"]
    json_trees = gbtree["trees"]
    # The trees the sklearn wrapper predicts with (best_iteration after early stopping).
    iteration_range = (0, 0)
    if wrapper is not None:
        first, last = wrapper._get_iteration_range(None)
        if last:
            indptr = gbtree["iteration_indptr"]
            json_trees, tree_info = json_trees[indptr[first]:indptr[last]], tree_info[indptr[first]:indptr[last]]
            iteration_range = (first, last)
    trees = []
    for t in json_trees:
        if any(t["split_type"]) or t.get("categories_nodes"):
            raise ExportError("%s: categorical splits are not supported" % name)
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise ExportError("%s: vector leaves (multi_strategy) are not supported" % name)
        left = np.asarray(t["left_children"], dtype=np.int64)
        right = np.asarray(t["right_children"], dtype=np.int64)
        cond = np.asarray(t["split_conditions"], dtype=np.float32)
        leaf = left < 0
        # XGBoost sends x < split left: for float32 x that is x <= the float32 just below split.
        below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)
        trees.append(Tree(feature=np.where(leaf, -2, np.asarray(t["split_indices"], dtype=np.int64)),
                          threshold=np.where(leaf, -2.0, below), left=np.where(leaf, -1, left),
                          right=np.where(leaf, -1, right),
                          value=np.where(leaf, cond, 0).astype(np.float32).astype(np.float64).reshape(-1, 1),
                          nan_left=np.asarray(t["default_left"], dtype=bool)))
    groups = np.asarray(tree_info, dtype=np.int64)
    if kind == CLASSIFIER and n_groups == 1 and objective == "multi:softprob":
        raise ExportError("%s: multi:softprob with one class is not supported" % name)
    base_scores = [float(v) for v in params["base_score"].strip("[]").split(",")]
    base = _xgb_margin_base(booster, trees, groups, n_groups, n_features, base_scores, link, iteration_range)
    threshold = _xgb_binary_threshold(objective) if kind == CLASSIFIER and n_groups == 1 else 0.0
    boost = Boost(sums="float32", link=link, scale=1.0, base=base, groups=groups, threshold=threshold)
    if kind == CLASSIFIER:
        classes = np.asarray(wrapper.classes_) if wrapper is not None else np.arange(max(n_groups, 2))
        n_classes = len(classes)
    else:
        classes, n_classes = None, 0
    names = booster.feature_names
    return Forest(kind=kind, n_features=n_features, n_classes=n_classes, trees=trees, classes=classes,
                  feature_names=_feature_names(wrapper) if wrapper is not None else (np.asarray(names) if names else None),
                  boost=boost)


def _largest_where(holds, lo: float, hi: float, dtype=np.float64) -> float:
    """The largest value x of `dtype` (float32 or float64) in [lo, hi) with holds(x), for a predicate that
    holds up to some point and not above it, given holds(lo) and not holds(hi): bisection over the
    values in their order (the bits as a sign and magnitude, so negative and positive alike)."""
    bits = np.uint32 if dtype == np.float32 else np.uint64
    sign = 1 << (8 * np.dtype(bits).itemsize - 1)

    def to_key(f):
        b = int(np.asarray(f, dtype=dtype).view(bits))
        return b if b < sign else -(b - sign)

    def from_key(k):
        return float(np.asarray(k if k >= 0 else (-k) | sign, dtype=bits).view(dtype))

    below, above = to_key(lo), to_key(hi)
    while above - below > 1:
        mid = (below + above) // 2
        if holds(from_key(mid)):
            below = mid
        else:
            above = mid
    return from_key(below)


# ---------------------------------------------------------------- LightGBM

_LGB_REGRESSION = {"regression": "identity", "regression_l1": "identity", "huber": "identity", "fair": "identity",
                   "quantile": "identity", "mape": "identity", "poisson": "exp", "gamma": "exp", "tweedie": "exp"}
_LGB_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float)


def _lgb_binary_threshold(sigmoid: float) -> float:
    """The largest double raw score r that LGBMClassifier.predict calls class 0: p = 1 / (1 + exp(-sigmoid * r))
    (LightGBM's double arithmetic, libm exp) and class 1 exactly when p > 1 - p."""
    def class1(r):
        p = 1.0 / (1.0 + math.exp(-sigmoid * r))
        return p > 1.0 - p

    if class1(-1.0) or not class1(1.0):
        raise ExportError("LightGBM: unexpected sigmoid at raw score -1 / 1")
    return _largest_where(lambda r: not class1(r), -1.0, 1.0)


def _lgb_tree(structure, name) -> Tree:
    feature, threshold, left, right, value, nan_left = [], [], [], [], [], []

    def add(node):
        i = len(feature)
        for column in (feature, threshold, left, right, value, nan_left):
            column.append(None)
        if "leaf_value" in node or "split_feature" not in node:
            feature[i], threshold[i], left[i], right[i] = -2, -2.0, -1, -1
            value[i], nan_left[i] = float(node.get("leaf_value", 0.0)), False
            return i
        if node["decision_type"] != "<=":
            raise ExportError("%s: categorical splits are not supported" % name)
        t = float(node["threshold"])
        missing, default_left = node["missing_type"], bool(node["default_left"])
        if missing == "None":
            nan = 0.0 <= t  # NaN is read as 0
        elif missing == "NaN":
            nan = default_left
        elif missing == "Zero":
            # Zeros (|x| <= 1e-35) and NaN go to the default side; representable only where x <= t sends them there too.
            if (default_left and not _LGB_ZERO <= t) or (not default_left and not -_LGB_ZERO > t):
                raise ExportError("%s: a split with missing_type Zero (zero_as_missing=True) that sends zeros and NaN "
                                  "%s by default while x <= %r sends 0 %s is not supported (the device compares 0 "
                                  "as a number)" % (name, "left" if default_left else "right", t,
                                                    "right" if default_left else "left"))
            nan = default_left
        else:
            raise ExportError("%s: missing_type %r is not supported" % (name, missing))
        feature[i], threshold[i], value[i], nan_left[i] = int(node["split_feature"]), t, 0.0, nan
        left[i] = add(node["left_child"])
        right[i] = add(node["right_child"])
        return i

    add(structure)
    return Tree(feature=np.array(feature, dtype=np.int64), threshold=np.array(threshold, dtype=np.float64),
                left=np.array(left, dtype=np.int64), right=np.array(right, dtype=np.int64),
                value=np.array(value, dtype=np.float64).reshape(-1, 1), nan_left=np.array(nan_left, dtype=bool))


def lightgbm_from_model(model) -> Forest:
    """LGBMClassifier, LGBMRegressor or a Booster (gbdt/goss boosting, numeric splits): ExportError for
    linear trees, categorical splits, random forest mode and unsupported objectives."""
    import lightgbm

    name = type(model).__name__
    if isinstance(model, lightgbm.Booster):
        booster, wrapper = model, None
    else:
        booster, wrapper = model.booster_, model
    text = booster.model_to_string()
    if "is_linear=1" in text:
        raise ExportError("%s: linear trees (linear_tree=True) are not supported" % name)
    dump = booster.dump_model()
    if dump.get("average_output"):
        raise ExportError("%s: boosting='rf' (averaged trees) is not supported" % name)
    objective = dump["objective"].split()
    K = int(dump["num_tree_per_iteration"])
    if objective[0] == "binary":
        kind, link = CLASSIFIER, "logistic"
        options = dict(o.split(":") for o in objective[1:])
        scale = float(options.get("sigmoid", "1"))
    elif objective[0] == "multiclass":
        kind, link, scale = CLASSIFIER, "softmax", 1.0
    elif objective[0] in _LGB_REGRESSION:
        kind, link, scale = REGRESSOR, _LGB_REGRESSION[objective[0]], 1.0
    else:
        raise ExportError("%s: objective %r is not supported" % (name, dump["objective"]))
    infos = dump["tree_info"]
    best = booster.best_iteration if wrapper is None else wrapper.best_iteration_
    if best and best > 0:
        infos = infos[:best * K]
    trees = [_lgb_tree(info["tree_structure"], name) for info in infos]
    groups = np.arange(len(trees), dtype=np.int64) % K
    threshold = _lgb_binary_threshold(scale) if kind == CLASSIFIER and K == 1 else 0.0
    boost = Boost(sums="float64", link=link, scale=scale, base=np.zeros(K), groups=groups, threshold=threshold,
                  compare64=True)
    if kind == CLASSIFIER:
        classes = np.asarray(wrapper.classes_) if wrapper is not None else np.arange(max(K, 2))
        n_classes = len(classes)
    else:
        classes, n_classes = None, 0
    names = dump.get("feature_names")
    feature_names = _feature_names(wrapper) if wrapper is not None else None
    if wrapper is None and names and not all(n.startswith("Column_") for n in names):
        feature_names = np.asarray(names)
    return Forest(kind=kind, n_features=int(dump["max_feature_idx"]) + 1, n_classes=n_classes, trees=trees,
                  classes=classes, feature_names=feature_names, boost=boost)


# ---------------------------------------------------------------- IsolationForest


def _iforest_outlier_limit(estimator, denominator: float) -> float:
    """The largest float64 path-length sum that IsolationForest.predict calls an outlier (-1), by
    bisection with scikit-learn's own arithmetic (2 ** -(depths / denominator), score - offset_ < 0);
    -1.0 when no sum is an outlier."""
    def outlier(depths):
        depths = np.array([depths], dtype=np.float64)
        scores = 2 ** (-np.divide(depths, denominator))
        return bool((-scores - estimator.offset_)[0] < 0)

    if not outlier(0.0):
        return -1.0
    largest = float(np.finfo(np.float32).max)
    if outlier(largest):
        return largest
    return _largest_where(outlier, 0.0, largest)


def isolation_forest_from_sklearn(estimator) -> Forest:
    """IsolationForest: per tree, each leaf's path length (depth + c(n_samples of the leaf) - 1, as
    scikit-learn adds it) summed in float64 in tree order; predict is +1 (inlier, class index 1) when the
    sum exceeds the host-computed outlier limit. Columns of estimators_features_ are remapped like Bagging."""
    from sklearn.ensemble._iforest import _average_path_length
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    n_features = int(estimator.n_features_in_)
    trees = []
    for t, (tree_estimator, features) in enumerate(zip(estimator.estimators_, estimator.estimators_features_)):
        tree = _tree_from_sklearn(tree_estimator.tree_, REGRESSOR)
        features = np.asarray(features, dtype=np.int64)
        split = tree.left >= 0
        feature = tree.feature.copy()
        feature[split] = features[tree.feature[split]]
        lengths = (np.asarray(estimator._decision_path_lengths[t], dtype=np.float64)
                   + np.asarray(estimator._average_path_length_per_tree[t], dtype=np.float64) - 1.0)
        trees.append(Tree(feature=feature, threshold=tree.threshold, left=tree.left, right=tree.right,
                          value=lengths.reshape(-1, 1), nan_left=tree.nan_left))
    denominator = float(len(estimator.estimators_) * _average_path_length([estimator._max_samples])[0])
    if not denominator > 0:
        raise ExportError("IsolationForest: max_samples=1 gives every sample the same score; nothing to export")
    boost = Boost(sums="float64", link="isolation", scale=-1.0 / denominator, base=np.zeros(1),
                  groups=np.zeros(len(trees), dtype=np.int64),
                  threshold=_iforest_outlier_limit(estimator, denominator), offset=float(estimator.offset_))
    return Forest(kind=CLASSIFIER, n_features=n_features, n_classes=2, trees=trees, classes=np.array([-1, 1]),
                  feature_names=_feature_names(estimator), boost=boost)
