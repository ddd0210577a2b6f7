"""Decision trees and forests: the intermediate representation and its lowering.

A fitted scikit-learn tree model is converted once into a :class:`Forest` (per
tree: features, float64 thresholds, children, leaf values). Everything else is
written from that IR: :func:`lower` makes the :class:`StoredForest` that the
model file holds and the device evaluates (thresholds rounded for the feature
dtype, identical leaves stored once), and :class:`StoredForest` also carries
the numpy reference of the device's arithmetic and its RAM size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ExportError
from .nets import expf, recipf

CLASSIFIER = "classifier"
REGRESSOR = "regressor"
FEATURE_DTYPES = ("int16", "float32")
VOTING = ("soft", "hard")
MAX_COUNT = 65535  # soft-vote leaves stored as class counts
MAX_PAIRS = 32768  # soft-vote leaves with counts: class:count pairs of all leaves (leaf references point at them)

# Limits of the device storage (natmods/common/mpyml_trees.h).
MAX_FEATURES = 32767  # a node keeps its NaN direction in the top bit of its feature index
MAX_CLASSES = 65535
MAX_LEAVES = 32768
MAX_CHILD_OFFSET = 32767
MAX_NODES = 2**24  # also the limit of trees and of soft-vote leaves x classes
INT16_MIN, INT16_MAX = -32768, 32767


@dataclass
class Tree:
    """One binary tree in scikit-learn's node layout (children -1 at leaves)."""

    feature: np.ndarray  # int64 per node
    threshold: np.ndarray  # float64 per node; go left when x <= threshold
    left: np.ndarray  # int64 per node, -1 at leaves
    right: np.ndarray
    value: np.ndarray  # float64 (n_nodes, n_values): weighted class counts, or the regression value
    # bool per node: a NaN feature goes left (scikit-learn's missing_go_to_left)
    nan_left: np.ndarray | None = None
    # classifiers: float64 (n_nodes, n_classes), the class probabilities scikit-learn's predict_proba gives
    proba: np.ndarray | None = None


@dataclass
class Forest:
    kind: str  # CLASSIFIER or REGRESSOR
    n_features: int
    n_classes: int  # 0 for regressors
    trees: list[Tree]
    classes: np.ndarray | None = None  # the estimator's classes_, which class indices refer to
    feature_names: np.ndarray | None = None  # the estimator's feature_names_in_, if any
    # AdaBoostClassifier (SAMME): per tree estimator_weights_, and scikit-learn's estimator_weights_.sum()
    tree_weights: np.ndarray | None = None
    weight_sum: float | None = None
    # gradient boosting (mpyml.boosting.Boost): trees' values are leaf contributions (value[:, 0]) summed per group
    boost: object | None = None


def _tree_from_sklearn(tree_, kind: str) -> Tree:
    value = np.asarray(tree_.value, dtype=np.float64)
    if value.shape[1] != 1:
        raise ExportError("only single-output estimators are supported, got %d outputs" % value.shape[1])
    value = value[:, 0, :]
    proba = None
    if kind == CLASSIFIER:
        # scikit-learn >= 1.4 stores class fractions (what predict_proba returns), older versions weighted counts.
        totals = value.sum(axis=1, keepdims=True)
        totals[totals == 0.0] = 1.0
        proba = value.copy() if _SKLEARN_FRACTIONS else value / totals
        value = value / totals * np.asarray(tree_.weighted_n_node_samples, dtype=np.float64)[:, None]
    n_nodes = len(tree_.feature)
    nan_left = np.asarray(getattr(tree_, "missing_go_to_left", np.zeros(n_nodes)), dtype=bool)
    return Tree(
        feature=np.asarray(tree_.feature, dtype=np.int64),
        threshold=np.asarray(tree_.threshold, dtype=np.float64),
        left=np.asarray(tree_.children_left, dtype=np.int64),
        right=np.asarray(tree_.children_right, dtype=np.int64),
        value=value,
        nan_left=nan_left,
        proba=proba,
    )


def _sklearn_stores_fractions() -> bool:
    import sklearn

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    return (major, minor) >= (1, 4)


_SKLEARN_FRACTIONS = _sklearn_stores_fractions()

# The estimators forest_from_sklearn converts (by class name, module sklearn.tree / sklearn.ensemble).
SUPPORTED = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
             "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
             "AdaBoostClassifier")


def forest_from_sklearn(estimator) -> Forest:
    """Converts a fitted estimator of SUPPORTED (exactly these classes: other ensembles of trees combine
    them differently): a decision tree, a random forest, extra trees, or an AdaBoostClassifier (SAMME)
    of decision trees. Raises ExportError for any other."""
    from sklearn import ensemble, tree
    from sklearn.base import is_classifier
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if type(estimator) not in tuple(getattr(tree, n, None) or getattr(ensemble, n) for n in SUPPORTED):
        from .registry import lookup

        lookup(estimator, families=("trees",))  # ExportError listing what is supported, unless another converter takes it
        raise ExportError("%s is not a forest: convert it with mpyml.convert" % name)
    check_is_fitted(estimator)
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise ExportError("only single-output estimators are supported, got n_outputs_=%d" % estimator.n_outputs_)
    if hasattr(estimator, "tree_"):
        sk_estimators = [estimator]
    else:
        sk_estimators = list(estimator.estimators_)
    if not all(type(e) in tuple(getattr(tree, n) for n in SUPPORTED[:4]) for e in sk_estimators):
        raise ExportError("%s: every estimator must be a decision tree, got %s"
                          % (name, sorted({type(e).__name__ for e in sk_estimators})))
    kind = CLASSIFIER if is_classifier(estimator) else REGRESSOR
    classes = np.asarray(estimator.classes_) if kind == CLASSIFIER else None
    n_classes = len(classes) if kind == CLASSIFIER else 0
    for e in sk_estimators:
        if kind == CLASSIFIER and (len(e.classes_) != n_classes or e.n_features_in_ != estimator.n_features_in_):
            raise ExportError("%s: a tree was fitted on other classes or features than the ensemble" % name)
    trees = [_tree_from_sklearn(e.tree_, kind) for e in sk_estimators]
    feature_names = getattr(estimator, "feature_names_in_", None)
    forest = Forest(kind=kind, n_features=int(estimator.n_features_in_), n_classes=n_classes, trees=trees,
                    classes=classes, feature_names=None if feature_names is None else np.asarray(feature_names))
    if name == "AdaBoostClassifier":
        if getattr(estimator, "algorithm", "SAMME") not in ("SAMME", "deprecated"):
            raise ExportError("AdaBoostClassifier: only algorithm='SAMME' is supported, got %r" % estimator.algorithm)
        weights = np.asarray(estimator.estimator_weights_, dtype=np.float64)
        forest.tree_weights = weights[:len(trees)].copy()
        forest.weight_sum = float(weights.sum())  # as scikit-learn's decision_function divides
    return forest


def float32_threshold(threshold: float) -> np.float32:
    """The largest float32 not above `threshold`: for float32 x, x <= it exactly when x <= threshold."""
    with np.errstate(over="ignore"):
        t32 = np.float32(threshold)
    if float(t32) > threshold:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return t32


def int16_threshold(threshold: float) -> int | str:
    """floor(threshold) for int16 features, or 'left' / 'right' when every int16 goes that way."""
    t = np.floor(threshold)
    if t >= INT16_MAX:
        return "left"
    if t < INT16_MIN:
        return "right"
    return int(t)


def soft_leaf_counts(proba: np.ndarray, weighted_counts: np.ndarray) -> np.ndarray | None:
    """Smallest integer class counts c (each <= MAX_COUNT) with float(c[k]) / sum(c) == proba[k]
    exactly in float64 for every class, or None when there are none (weighted training)."""
    weighted_counts = np.asarray(weighted_counts, dtype=np.float64)
    counts = np.round(weighted_counts)
    if not np.all(np.abs(weighted_counts - counts) <= 1e-9 * max(1.0, weighted_counts.max())) or not counts.any():
        return None
    counts = counts.astype(np.int64)
    counts //= np.gcd.reduce(counts[counts > 0])
    total = int(counts.sum())
    if counts.max() > MAX_COUNT or any(float(c) / total != p for c, p in zip(counts.tolist(), proba.tolist())):
        return None
    return counts


# How each kind of forest stores its leaves (the file's leaf_values header line).
LEAF_KINDS = ("counts", "float64", "class", "float32")
SIGMOID_LIMIT = 80.0  # mpyml_math.h: sigmoid arguments are clamped to [-80, 80]
# A boosted forest (mpyml.boosting.Boost): the links and sum precisions the device implements.
LINKS = ("identity", "exp", "logistic", "softmax", "isolation")
SUMS = ("float64", "float32")
LN2 = 0.6931472  # float32 ln 2 of mpyml_trees.h (IsolationForest scores: 2**z = e**(z ln 2))


@dataclass
class StoredForest:
    """A forest as the model file stores it and the device evaluates it.

    Child and root references: >= 0 is a node index, < 0 is leaf -(ref + 1).
    Nodes are numbered per tree in depth-first order, so a child always comes
    after its parent. Leaves are shared by all trees.
    """

    kind: str
    voting: str | None  # "soft" / "hard" / "samme" for classifiers, None for regressors
    dtype: str  # "int16" or "float32"
    n_features: int
    n_classes: int
    roots: np.ndarray  # int64 per tree
    feature: np.ndarray  # int64 per node
    threshold: np.ndarray  # int64 (int16 models) or float32 per node
    left: np.ndarray  # int64 per node
    right: np.ndarray
    # per leaf: (n_leaves, n_classes) int64 class counts (leaf_kind "counts") or float64 probabilities
    # ("float64"); (n_leaves, 1) class index ("class") or float32 value ("float32")
    leaves: np.ndarray
    leaf_kind: str = "counts"
    nan_left: np.ndarray | None = None  # bool per node: a NaN feature goes left (float32 forests)
    classes: np.ndarray | None = field(default=None)
    feature_names: np.ndarray | None = field(default=None)
    tree_votes: np.ndarray | None = None  # SAMME: float64 (n_trees, 2), the vote for the tree's class and for the others
    weight_sum: float | None = None  # SAMME: the sum the votes are divided by
    input_dtype: str | None = None  # pipelines: the input dtype whose pipeline.predict the file matches
    boost: object | None = None  # voting "boost": mpyml.boosting.Boost (groups per tree, base, link, scale, threshold)

    def __post_init__(self):
        if self.nan_left is None:
            self.nan_left = np.zeros(len(self.feature), dtype=bool)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)

    def leaf_values(self) -> np.ndarray:
        """float32 leaf table the device sums: count * float32(1 / total) for counts, float32 of float64
        probabilities, class indices, or the regression values."""
        if self.leaf_kind == "counts":
            totals = self.leaves.sum(axis=1, keepdims=True).astype(np.float64)
            scale = (1.0 / totals).astype(np.float32)
            return self.leaves.astype(np.float32) * scale
        return self.leaves.astype(np.float32)

    def leaf_proba64(self) -> np.ndarray:
        """float64 (n_leaves, n_classes) leaf probabilities of soft voting, as scikit-learn's trees give them."""
        if self.leaf_kind == "counts":
            return self.leaves / self.leaves.sum(axis=1, keepdims=True)
        return self.leaves.astype(np.float64)

    @property
    def threshold_dtype(self) -> str:
        """How the device stores thresholds: int8 when every threshold of an int16 forest fits -128..127."""
        if self.dtype == "float32":
            return "float32"
        fits = self.n_nodes == 0 or (self.threshold.min() >= -128 and self.threshold.max() <= 127)
        return "int8" if fits else "int16"

    def pair_stats(self) -> tuple[int, int, int]:
        """Soft voting with counts: (pairs of non-zero class counts, the largest count, distinct leaf totals)."""
        return (int((self.leaves > 0).sum()), int(self.leaves.max()),
                len(np.unique(self.leaves.sum(axis=1))))

    @property
    def tree_weight(self) -> np.float32:
        return np.float32(1.0 / self.n_trees)

    def ram_bytes(self) -> int:
        """Bytes of the device's model block (mirrors mpyml_forest_bytes in mpyml_trees.h)."""

        def align4(n):
            return (n + 3) & ~3

        threshold_size = {"float32": 4, "int16": 2, "int8": 1}[self.threshold_dtype]
        feature_size = 1 if self.n_features <= (128 if self.dtype == "float32" else 256) else 2
        if self.voting == "boost":
            g = self.boost.n_groups
            n = 16 * g + (8 * self.n_leaves if self.leaf_kind == "float64" else 0)
            n += align4(4 * self.n_trees) + align4(threshold_size * self.n_nodes) + align4(feature_size * self.n_nodes)
            n += 2 * align4(2 * self.n_nodes) + align4(2 * self.n_trees) + 4 * self.n_leaves
            return n + 8 * g
        n = 16 * self.n_trees + 8 * self.n_classes if self.voting == "samme" else 0
        n += 8 * self.n_leaves * self.n_classes if self.leaf_kind == "float64" else 0
        n += align4(4 * self.n_trees)
        n += align4(threshold_size * self.n_nodes) + align4(feature_size * self.n_nodes) + 2 * align4(2 * self.n_nodes)
        if self.leaf_kind == "counts":
            n_pairs, max_count, n_totals = self.pair_stats()
            n += align4(pair_bytes(self.n_classes, max_count) * n_pairs) + 8 * n_totals
        elif self.leaf_kind == "class":
            n += align4(2 * self.n_leaves)
        elif self.leaf_kind == "float32":
            n += 4 * self.n_leaves
        return n + 4 * max(self.n_classes, 1)

    def leaf_indices(self, X: np.ndarray) -> np.ndarray:
        """(n_rows, n_trees) leaf reached by each row in each tree, walking as the device does."""
        X = self.cast_features(X)
        rows = np.arange(len(X))
        out = np.empty((len(X), self.n_trees), dtype=np.int64)
        for t, root in enumerate(self.roots):
            ref = np.full(len(X), root, dtype=np.int64)
            active = ref >= 0
            while active.any():
                node = ref[active]
                x = X[rows[active], self.feature[node]]
                go_left = x <= self.threshold[node]
                if self.dtype == "float32":
                    go_left |= np.isnan(x) & self.nan_left[node]
                ref[active] = np.where(go_left, self.left[node], self.right[node])
                active = ref >= 0
            out[:, t] = -(ref + 1)
        return out

    def cast_features(self, X) -> np.ndarray:
        """X as the device reads it (int16 or float32); refuses a DataFrame whose columns are not
        feature_names in order."""
        columns = getattr(X, "columns", None)
        if columns is not None and self.feature_names is not None and list(columns) != list(self.feature_names):
            raise ValueError("X: the DataFrame's columns must be the model's feature names in order (%s), got %s"
                             % (list(self.feature_names)[:8], list(columns)[:8]))
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError("X: expected shape (n_rows, %d), got %s" % (self.n_features, X.shape))
        if self.dtype == "int16":
            if not np.issubdtype(X.dtype, np.integer):
                if not np.array_equal(X, np.round(X)):
                    raise ValueError("X: int16 models need integer features")
            if X.min(initial=0) < INT16_MIN or X.max(initial=0) > INT16_MAX:
                raise ValueError("X: int16 features must lie in -32768..32767")
            return X.astype(np.int16)
        return X.astype(np.float32)

    def sums(self, X) -> np.ndarray:
        """Per-row unscaled votes or values, summed in float32 in tree order as the device does."""
        leaves = self.leaf_indices(X)
        values = self.leaf_values()
        width = max(self.n_classes, 1)
        sums = np.zeros((len(leaves), width), dtype=np.float32)
        for t in range(self.n_trees):
            if self.leaf_kind == "class":
                classes = values[leaves[:, t], 0].astype(np.int64)
                sums[np.arange(len(leaves)), classes] += np.float32(1.0)
            else:
                sums += values[leaves[:, t]]
        return sums

    def decision_function(self, X) -> np.ndarray:
        """Boosting: boost_decision. SAMME: scikit-learn's AdaBoostClassifier.decision_function per class (float64, n_rows x
        n_classes; not summed to one column for two classes), as the device computes it."""
        if self.voting == "boost":
            return self.boost_decision(X)
        leaves = self.leaf_indices(X)
        decision = np.zeros((len(leaves), self.n_classes), dtype=np.float64)
        for t in range(self.n_trees):
            votes = self.leaves[leaves[:, t], 0].astype(np.int64)
            decision += np.where(votes[:, None] == np.arange(self.n_classes), self.tree_votes[t, 0], self.tree_votes[t, 1])
        return decision / self.weight_sum

    # ---------------------------------------------------------------- gradient boosting (voting "boost")

    def boost_raw64(self, X) -> np.ndarray:
        """(n_rows, n_groups) raw scores as the library sums them: float64 from base in tree order
        (scikit-learn, LightGBM), or float32 (XGBoost, returned as float64)."""
        leaves = self.leaf_indices(X)
        b = self.boost
        dtype = np.float64 if self.leaf_kind == "float64" else np.float32
        raw = np.tile(b.base.astype(dtype), (len(leaves), 1))
        values = self.leaves[:, 0].astype(dtype)
        for t in range(self.n_trees):
            g = b.groups[t]
            raw[:, g] = (raw[:, g] + values[leaves[:, t]]).astype(dtype)
        return raw.astype(np.float64)

    def boost_sums32(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The device's fast path: float32 sums and float32 sums of magnitudes per group, in tree order."""
        leaves = self.leaf_indices(X)
        b = self.boost
        base = b.base.astype(np.float32)
        sums = np.tile(base, (len(leaves), 1))
        mags = np.tile(np.abs(base), (len(leaves), 1))
        values = self.leaves[:, 0].astype(np.float32)
        for t in range(self.n_trees):
            g, v = b.groups[t], values[leaves[:, t]]
            sums[:, g] = (sums[:, g] + v).astype(np.float32)
            mags[:, g] = (mags[:, g] + np.abs(v)).astype(np.float32)
        return sums, mags

    def boost_slack(self) -> np.float32:
        """The relative error bound of the float32 sums: (n_trees + 4) * 2**-23 (float32)."""
        return np.float32(self.n_trees + 4) * np.float32(2.0**-23)

    def boost_classes(self, X) -> np.ndarray:
        """Class indices as the device decides them (mpyml_boost_class)."""
        b = self.boost
        sums, mags = self.boost_sums32(X)
        if self.leaf_kind == "float32":  # the float32 sums are the library's
            if b.n_groups == 1:
                return (sums[:, 0].astype(np.float64) > b.threshold).astype(np.int64)
            return np.argmax(sums, axis=1)
        slack = self.boost_slack()
        if b.n_groups == 1:
            t32 = np.float32(b.threshold)
            d = (sums[:, 0] - t32).astype(np.float32)
            bound = (slack * (mags[:, 0] + np.abs(t32)).astype(np.float32)).astype(np.float32)
            out = (d > 0).astype(np.int64)
            close = ~((d > bound) | (-d > bound))
            if close.any():
                out[close] = (self.boost_raw64(np.asarray(X)[close])[:, 0] > b.threshold).astype(np.int64)
            return out
        best = np.argmax(sums, axis=1)
        rows = np.arange(len(sums))
        top, top_mag = sums[rows, best][:, None], mags[rows, best][:, None]
        gap = (top - sums).astype(np.float32)
        bound = (slack * (top_mag + mags).astype(np.float32)).astype(np.float32)
        near = (gap <= bound)
        near[rows, best] = False
        close = near.any(axis=1)
        if close.any():
            best[close] = np.argmax(self.boost_raw64(np.asarray(X)[close]), axis=1)
        return best

    def boost_raw32(self, X) -> np.ndarray:
        """float32 raw scores times float32 scale, the input of the device's link: the library's float64
        sums rounded to float32 (float32 sums for XGBoost)."""
        raw = self.boost_raw64(X).astype(np.float32)
        return (raw * np.float32(self.boost.scale)).astype(np.float32)

    def boost_proba(self, X) -> np.ndarray:
        z = self.boost_raw32(X)

        def sigmoid(v):
            v = np.clip(v, -np.float32(SIGMOID_LIMIT), np.float32(SIGMOID_LIMIT)).astype(np.float32)
            return recipf((np.float32(1) + expf(-v)).astype(np.float32))

        if self.boost.n_groups == 1:
            return np.stack([sigmoid(-z[:, 0]), sigmoid(z[:, 0])], axis=1)
        e = expf((z - z.max(axis=1, keepdims=True)).astype(np.float32))
        total = np.zeros(len(z), dtype=np.float32)
        for k in range(z.shape[1]):
            total = (total + e[:, k]).astype(np.float32)
        return (e * recipf(total)[:, None]).astype(np.float32)

    def score_samples(self, X) -> np.ndarray:
        """IsolationForest: scikit-learn's score_samples, -2 ** (-depths / denominator), as the device computes
        it in float32: -expf(float32(depths) * float32(-1 / denominator) * float32(ln 2))."""
        if self.boost is None or self.boost.link != "isolation":
            raise TypeError("score_samples: only IsolationForest models have it")
        z = self.boost_raw32(X)[:, 0]
        return -expf((z * np.float32(LN2)).astype(np.float32))

    def boost_decision(self, X) -> np.ndarray:
        """(n_rows, n_groups) float32: the raw scores rounded to float32; IsolationForest: score_samples - offset_."""
        if self.boost.link == "isolation":
            return (self.score_samples(X) - np.float32(self.boost.offset)).astype(np.float32)[:, None]
        return self.boost_raw64(X).astype(np.float32)

    def boost_values(self, X) -> np.ndarray:
        """Regression: link(scale * raw) in float32 as the device computes it."""
        z = self.boost_raw32(X)[:, 0]
        if self.boost.link == "exp":
            return expf(z)
        if self.boost.link == "logistic":
            z = np.clip(z, -np.float32(SIGMOID_LIMIT), np.float32(SIGMOID_LIMIT)).astype(np.float32)
            return recipf((np.float32(1) + expf(-z)).astype(np.float32))
        return z

    def predict_index(self, X) -> np.ndarray:
        """Class indices (int64; classifiers) or float32 values (regressors), as the device computes them:
        scikit-learn's decision in float64 (soft voting: the mean of the trees' probabilities, summed in tree
        order; SAMME: the weighted votes), the vote count for hard voting, lowest index on ties."""
        if self.voting == "boost":
            return self.boost_values(X) if self.kind == REGRESSOR else self.boost_classes(X)
        if self.kind == REGRESSOR:
            return self.sums(X)[:, 0] * self.tree_weight
        if self.voting == "samme":
            return np.argmax(self.decision_function(X), axis=1)
        if self.voting == "hard":
            return np.argmax(self.sums(X), axis=1)
        leaves = self.leaf_indices(X)
        proba = self.leaf_proba64()
        total = np.zeros((len(leaves), self.n_classes), dtype=np.float64)
        for t in range(self.n_trees):
            total += proba[leaves[:, t]]
        return np.argmax(total / self.n_trees, axis=1)

    def predict(self, X) -> np.ndarray:
        """Class labels (classes_[index], as scikit-learn's predict) or regression values, as the device."""
        index = self.predict_index(X)
        if self.kind == REGRESSOR or self.classes is None:
            return index
        return np.asarray(self.classes)[index]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: soft and hard voting bit for bit as the device (float32 sums times
        float32(1/n_trees)); SAMME as scikit-learn's float64 softmax (the device's float32 one is within 1e-5)."""
        if self.kind != CLASSIFIER:
            raise TypeError("predict_proba: the model is a regressor")
        if self.voting == "boost":
            if self.boost.link == "isolation":
                raise TypeError("predict_proba: IsolationForest models have score_samples and decision_function")
            return self.boost_proba(X)
        if self.voting != "samme":
            return self.sums(X) * self.tree_weight
        decision = self.decision_function(X)
        if self.n_classes == 1:
            return np.ones((len(decision), 1))
        if self.n_classes == 2:
            d = decision[:, 1] - decision[:, 0]
            z = np.vstack([-d, d]).T / 2
        else:
            z = decision / (self.n_classes - 1)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def _lower_tree(tree: Tree, dtype: str, leaf_ref, nodes: list) -> int:
    """Appends `tree`'s decision nodes to `nodes` in depth-first order; returns its root reference."""
    first = len(nodes)
    nan_left = tree.nan_left if tree.nan_left is not None else np.zeros(len(tree.feature), dtype=bool)

    def resolve(n):
        # Skips nodes whose int16 comparison always goes the same way.
        while tree.left[n] >= 0 and dtype == "int16":
            t = int16_threshold(tree.threshold[n])
            if t == "left":
                n = tree.left[n]
            elif t == "right":
                n = tree.right[n]
            else:
                break
        return n

    def ref_of(n):
        return leaf_ref(tree, n) if tree.left[n] < 0 else None

    root = resolve(0)
    if tree.left[root] < 0:
        return leaf_ref(tree, root)
    # Iterative depth-first: each stack entry is (sklearn node, index of the parent's record, side).
    stack = [(root, None, None)]
    while stack:
        n, parent, side = stack.pop()
        index = len(nodes)
        if parent is not None:
            nodes[parent][side] = index
        if dtype == "int16":
            threshold = int16_threshold(tree.threshold[n])
        else:
            threshold = float32_threshold(tree.threshold[n])
        # int16 features have no NaN: the direction is kept for float32 forests only.
        record = [int(tree.feature[n]), threshold, None, None, bool(nan_left[n]) and dtype == "float32"]
        nodes.append(record)
        left, right = resolve(tree.left[n]), resolve(tree.right[n])
        # Push right first so the left subtree is numbered right after its parent.
        for side_index, child in ((3, right), (2, left)):
            leaf = ref_of(child)
            if leaf is not None:
                record[side_index] = leaf
            else:
                stack.append((child, index, side_index))
    for i in range(first, len(nodes)):
        for side_index in (2, 3):
            child = nodes[i][side_index]
            if child >= 0 and child - i > MAX_CHILD_OFFSET:
                raise ExportError("a tree is too big: a child node lies %d nodes after its parent (at most %d)"
                                  % (child - i, MAX_CHILD_OFFSET))
    return first


def pair_bytes(n_classes: int, max_count: int) -> int:
    """Bytes of one class:count pair on the device: count << (class bits + 1) | class << 1 | last-pair flag."""
    bits = 1 + int(n_classes - 1).bit_length() + int(max_count).bit_length()
    return 2 if bits <= 16 else 4 if bits <= 32 else 0


def _soft_leaf_kind(forest: Forest) -> str:
    """'counts' when every leaf's probabilities are exact ratios of small class counts (and the leaves'
    pairs fit the device's storage), else 'float64'."""
    max_count = 0
    for tree in forest.trees:
        for n in np.flatnonzero(tree.left < 0):
            counts = soft_leaf_counts(tree.proba[n], tree.value[n])
            if counts is None:
                return "float64"
            max_count = max(max_count, int(counts.max()))
    return "counts" if pair_bytes(forest.n_classes, max_count) else "float64"


def lower(forest: Forest, dtype: str = "int16", voting: str = "soft") -> StoredForest:
    """The stored form of `forest` for int16 or float32 features and soft or hard voting
    (AdaBoost forests always vote as SAMME; voting does not apply)."""
    if dtype not in FEATURE_DTYPES:
        raise ExportError("feature_dtype must be one of %s, got %r" % (FEATURE_DTYPES, dtype))
    if forest.kind == CLASSIFIER and voting not in VOTING:
        raise ExportError("voting must be one of %s, got %r" % (VOTING, voting))
    if forest.n_features > MAX_FEATURES:
        raise ExportError("%d features, the format supports at most %d" % (forest.n_features, MAX_FEATURES))
    if forest.n_classes > MAX_CLASSES:
        raise ExportError("%d classes, the format supports at most %d" % (forest.n_classes, MAX_CLASSES))
    boost = forest.boost
    if boost is not None:
        voting, leaf_kind = "boost", boost.sums
        _check_boost(forest)
    elif forest.kind != CLASSIFIER:
        voting, leaf_kind = None, "float32"
    elif forest.tree_weights is not None:
        voting, leaf_kind = "samme", "class"
    elif voting == "hard":
        leaf_kind = "class"
    else:
        leaf_kind = _soft_leaf_kind(forest)

    leaf_index: dict[tuple, int] = {}
    leaves: list[tuple] = []

    def leaf_ref(tree: Tree, n: int) -> int:
        if voting == "boost":
            key = (float(tree.value[n][0]),)
        elif leaf_kind == "class":
            key = (int(np.argmax(tree.proba[n])),)  # the tree's own predict: argmax of its probabilities
        elif leaf_kind == "counts":
            key = tuple(soft_leaf_counts(tree.proba[n], tree.value[n]).tolist())
        elif leaf_kind == "float64":
            key = tuple(float(p) for p in tree.proba[n])
        else:
            key = (float(np.float32(tree.value[n][0])),)
        if key not in leaf_index:
            leaf_index[key] = len(leaves)
            leaves.append(key)
        return -(leaf_index[key] + 1)

    nodes: list = []
    roots = [_lower_tree(tree, dtype, leaf_ref, nodes) for tree in forest.trees]
    if len(leaves) > MAX_LEAVES:
        raise ExportError("%d distinct leaves, the format supports at most %d (use voting='hard', fewer or smaller trees)"
                          % (len(leaves), MAX_LEAVES))
    if leaf_kind == "counts" and sum(sum(1 for c in leaf if c) for leaf in leaves) > MAX_PAIRS:
        raise ExportError("the soft-vote leaves hold more than %d class:count pairs (use voting='hard', fewer or "
                          "smaller trees)" % MAX_PAIRS)
    soft = leaf_kind in ("counts", "float64") and voting != "boost"
    if len(nodes) > MAX_NODES or len(roots) > MAX_NODES or (soft and len(leaves) * forest.n_classes > MAX_NODES):
        raise ExportError("model too big: %d trees, %d nodes, %d leaves x %d classes (each at most %d)"
                          % (len(roots), len(nodes), len(leaves), forest.n_classes, MAX_NODES))
    width = forest.n_classes if soft else 1
    threshold_dtype = np.float32 if dtype == "float32" else np.int64
    tree_votes = None
    if voting == "samme":
        weights = np.asarray(forest.tree_weights, dtype=np.float64)
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or not forest.weight_sum > 0:
            raise ExportError("AdaBoostClassifier: estimator weights must be finite and >= 0 with a positive sum")
        # scikit-learn's decision_function adds w for the tree's class and -1 / (n_classes - 1) * w for the others.
        other = np.array([-1 / (forest.n_classes - 1) * w if forest.n_classes > 1 else 0.0 for w in weights])
        tree_votes = np.stack([weights, other], axis=1)
    return StoredForest(
        kind=forest.kind,
        voting=voting,
        dtype=dtype,
        n_features=forest.n_features,
        n_classes=forest.n_classes,
        roots=np.array(roots, dtype=np.int64),
        feature=np.array([r[0] for r in nodes], dtype=np.int64),
        threshold=np.array([r[1] for r in nodes], dtype=threshold_dtype),
        left=np.array([r[2] for r in nodes], dtype=np.int64),
        right=np.array([r[3] for r in nodes], dtype=np.int64),
        nan_left=np.array([r[4] for r in nodes], dtype=bool),
        leaves=np.array(leaves, dtype=np.int64 if leaf_kind in ("counts", "class") and voting != "boost" else np.float64
                        ).reshape(len(leaves), width if voting != "boost" else 1),
        leaf_kind=leaf_kind,
        classes=forest.classes,
        feature_names=forest.feature_names,
        tree_votes=tree_votes,
        weight_sum=forest.weight_sum,
        boost=boost,
    )


MAX_GROUPS = 65535


def _check_boost(forest: Forest) -> None:
    """ExportError for a boosted forest the device cannot hold: groups, base scores and leaf values."""
    b = forest.boost
    if b.sums not in SUMS or b.link not in LINKS:
        raise ExportError("boosting: sums must be one of %s and link one of %s" % (SUMS, LINKS))
    g = b.n_groups
    if forest.kind == CLASSIFIER:
        ok = (g == 1 and forest.n_classes == 2 and b.link in ("logistic", "isolation")) or (
            g == forest.n_classes >= 2 and b.link == "softmax")
    else:
        ok = g == 1 and b.link not in ("softmax", "isolation")
    if not ok:
        raise ExportError("boosting: %d output groups with link %s for %d classes are not supported"
                          % (g, b.link, forest.n_classes))
    if len(b.groups) != len(forest.trees) or (len(b.groups) and (b.groups.min() < 0 or b.groups.max() >= g)):
        raise ExportError("boosting: every tree needs an output group in 0..%d" % (g - 1))
    values = np.concatenate([t.value[t.left < 0, 0] for t in forest.trees] + [b.base, [b.threshold, b.scale, b.offset]])
    if not np.all(np.isfinite(values)) or not np.all(np.isfinite(values.astype(np.float32))):
        raise ExportError("boosting: leaf values, base scores, the scale and the threshold must be finite in float32")
