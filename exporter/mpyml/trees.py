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

CLASSIFIER = "classifier"
REGRESSOR = "regressor"
FEATURE_DTYPES = ("int16", "float32")
VOTING = ("soft", "hard")

# Limits of the device storage (natmods/common/mpyml_trees.h).
MAX_FEATURES = 65535
MAX_CLASSES = 65535
MAX_LEAVES = 32768
MAX_CHILD_OFFSET = 32767
MAX_NODES = 2**24  # also the limit of trees and of soft-vote leaves x classes
INT16_MIN, INT16_MAX = -32768, 32767


class ExportError(ValueError):
    """The estimator cannot be represented in the requested model format."""


@dataclass
class Tree:
    """One binary tree in scikit-learn's node layout (children -1 at leaves)."""

    feature: np.ndarray  # int64 per node
    threshold: np.ndarray  # float64 per node; go left when x <= threshold
    left: np.ndarray  # int64 per node, -1 at leaves
    right: np.ndarray
    value: np.ndarray  # float64 (n_nodes, n_values): weighted class counts, or the regression value


@dataclass
class Forest:
    kind: str  # CLASSIFIER or REGRESSOR
    n_features: int
    n_classes: int  # 0 for regressors
    trees: list[Tree]
    classes: np.ndarray | None = None  # the estimator's classes_, which class indices refer to


def _tree_from_sklearn(tree_, kind: str) -> Tree:
    value = np.asarray(tree_.value, dtype=np.float64)
    if value.shape[1] != 1:
        raise ExportError("only single-output estimators are supported, got %d outputs" % value.shape[1])
    value = value[:, 0, :]
    if kind == CLASSIFIER:
        # scikit-learn >= 1.4 stores class fractions, older versions weighted counts: make both counts.
        totals = value.sum(axis=1, keepdims=True)
        totals[totals == 0.0] = 1.0
        value = value / totals * np.asarray(tree_.weighted_n_node_samples, dtype=np.float64)[:, None]
    return Tree(
        feature=np.asarray(tree_.feature, dtype=np.int64),
        threshold=np.asarray(tree_.threshold, dtype=np.float64),
        left=np.asarray(tree_.children_left, dtype=np.int64),
        right=np.asarray(tree_.children_right, dtype=np.int64),
        value=value,
    )


def forest_from_sklearn(estimator) -> Forest:
    """Converts a fitted DecisionTree*, ExtraTree*, RandomForest* or ExtraTrees* estimator (exactly these
    classes: other ensembles of trees combine them differently); ExportError for any other."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils.validation import check_is_fitted

    from sklearn import ensemble, tree

    if type(estimator) in (tree.DecisionTreeClassifier, tree.DecisionTreeRegressor, tree.ExtraTreeClassifier,
                           tree.ExtraTreeRegressor):
        check_is_fitted(estimator)
        sk_trees = [estimator.tree_]
    elif type(estimator) in (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor,
                             ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor):
        check_is_fitted(estimator)
        sk_trees = [e.tree_ for e in estimator.estimators_]
    else:  # e.g. AdaBoost, gradient boosting, Bagging (mpyml.ensembles): same trees, other arithmetic
        from .registry import lookup

        lookup(estimator, families=("trees",))
        raise ExportError("%s is not a forest: convert it with mpyml.convert" % type(estimator).__name__)
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise ExportError("only single-output estimators are supported, got n_outputs_=%d" % estimator.n_outputs_)
    if is_classifier(estimator):
        kind, classes = CLASSIFIER, np.asarray(estimator.classes_)
        n_classes = len(classes)
    elif is_regressor(estimator):
        kind, classes, n_classes = REGRESSOR, None, 0
    else:
        raise ExportError("neither a classifier nor a regressor: %s" % type(estimator).__name__)
    trees = [_tree_from_sklearn(t, kind) for t in sk_trees]
    return Forest(kind=kind, n_features=int(estimator.n_features_in_), n_classes=n_classes, trees=trees, classes=classes)


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


# Soft-vote leaves hold integer class weights whose sum stays below 2**24: then
# w / sum(w) rounds to the same float32 whether computed in float32 or in double.
MAX_WEIGHT_SUM = 2**24 - 1
_WEIGHT_SCALE = 2**23


def soft_vote_weights(counts: np.ndarray) -> np.ndarray:
    """Smallest integer weights with the leaf's class proportions (exact for unweighted training)."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.round(counts)
    exact = np.all(np.abs(counts - weights) <= 1e-9 * max(1.0, counts.max()))
    if not exact or weights.sum() > MAX_WEIGHT_SUM:
        total = counts.sum()
        weights = np.round(counts / total * _WEIGHT_SCALE) if total > 0 else np.zeros_like(counts)
    weights = weights.astype(np.int64)
    if weights.any():
        weights //= np.gcd.reduce(weights[weights > 0])
    return weights


@dataclass
class StoredForest:
    """A forest as the model file stores it and the device evaluates it.

    Child and root references: >= 0 is a node index, < 0 is leaf -(ref + 1).
    Nodes are numbered per tree in depth-first order, so a child always comes
    after its parent. Leaves are shared by all trees.
    """

    kind: str
    voting: str | None  # "soft" / "hard" for classifiers, None for regressors
    dtype: str  # "int16" or "float32"
    n_features: int
    n_classes: int
    roots: np.ndarray  # int64 per tree
    feature: np.ndarray  # int64 per node
    threshold: np.ndarray  # int64 (int16 models) or float32 per node
    left: np.ndarray  # int64 per node
    right: np.ndarray
    leaves: np.ndarray  # float64 (n_leaves, width): integer class weights (soft), [class index] (hard) or [float32 value]
    classes: np.ndarray | None = field(default=None)
    input_dtype: str | None = None  # pipelines: the input dtype whose pipeline.predict the file matches

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
        """float32 leaf table as the device holds it: soft-vote weights become probabilities w / sum(w)."""
        if self.voting != "soft":
            return self.leaves.astype(np.float32)
        totals = self.leaves.sum(axis=1, keepdims=True)
        totals[totals == 0] = 1
        return (self.leaves / totals).astype(np.float32)

    @property
    def tree_weight(self) -> np.float32:
        return np.float32(1.0 / self.n_trees)

    def ram_bytes(self) -> int:
        """Bytes of the device's model block (mirrors mpyml_forest_bytes in mpyml_trees.h)."""

        def align4(n):
            return (n + 3) & ~3

        threshold_size = 4 if self.dtype == "float32" else 2
        n = align4(4 * self.n_trees)
        n += align4(threshold_size * self.n_nodes) + align4(2 * self.n_nodes) + 2 * align4(2 * self.n_nodes)
        if self.voting == "hard":
            n += align4(2 * self.n_leaves)
        else:
            n += 4 * self.n_leaves * self.leaves.shape[1]
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
                go_left = X[rows[active], self.feature[node]] <= self.threshold[node]
                ref[active] = np.where(go_left, self.left[node], self.right[node])
                active = ref >= 0
            out[:, t] = -(ref + 1)
        return out

    def cast_features(self, X) -> np.ndarray:
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
            if self.voting == "hard":
                classes = values[leaves[:, t], 0].astype(np.int64)
                sums[np.arange(len(leaves)), classes] += np.float32(1.0)
            else:
                sums += values[leaves[:, t]]
        return sums

    def predict(self, X) -> np.ndarray:
        """Class indices (classifiers) or float32 values (regressors), as the device computes them."""
        sums = self.sums(X)
        if self.kind == REGRESSOR:
            return sums[:, 0] * self.tree_weight
        return np.argmax(sums, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        if self.kind != CLASSIFIER:
            raise TypeError("predict_proba: the model is a regressor")
        return self.sums(X) * self.tree_weight


def _lower_tree(tree: Tree, dtype: str, leaf_ref, nodes: list) -> int:
    """Appends `tree`'s decision nodes to `nodes` in depth-first order; returns its root reference."""
    first = len(nodes)

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
        return leaf_ref(tree.value[n]) if tree.left[n] < 0 else None

    root = resolve(0)
    if tree.left[root] < 0:
        return leaf_ref(tree.value[root])
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
        record = [int(tree.feature[n]), threshold, None, None]
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


def lower(forest: Forest, dtype: str = "int16", voting: str = "soft") -> StoredForest:
    """The stored form of `forest` for int16 or float32 features and soft or hard voting."""
    if dtype not in FEATURE_DTYPES:
        raise ExportError("feature_dtype must be one of %s, got %r" % (FEATURE_DTYPES, dtype))
    if forest.kind == CLASSIFIER and voting not in VOTING:
        raise ExportError("voting must be one of %s, got %r" % (VOTING, voting))
    if forest.n_features > MAX_FEATURES:
        raise ExportError("%d features, the format supports at most %d" % (forest.n_features, MAX_FEATURES))
    if forest.n_classes > MAX_CLASSES:
        raise ExportError("%d classes, the format supports at most %d" % (forest.n_classes, MAX_CLASSES))
    voting = voting if forest.kind == CLASSIFIER else None

    leaf_index: dict[tuple, int] = {}
    leaves: list[tuple] = []

    def leaf_ref(value: np.ndarray) -> int:
        if voting == "hard":
            key = (float(np.argmax(value)),)
        elif voting == "soft":
            key = tuple(soft_vote_weights(value).tolist())
        else:
            key = (float(np.float32(value[0])),)
        if key not in leaf_index:
            leaf_index[key] = len(leaves)
            leaves.append(key)
        return -(leaf_index[key] + 1)

    nodes: list = []
    roots = [_lower_tree(tree, dtype, leaf_ref, nodes) for tree in forest.trees]
    if len(leaves) > MAX_LEAVES:
        raise ExportError("%d distinct leaves, the format supports at most %d (use voting='hard', fewer or smaller trees)"
                          % (len(leaves), MAX_LEAVES))
    if len(nodes) > MAX_NODES or len(roots) > MAX_NODES or (voting == "soft" and len(leaves) * forest.n_classes > MAX_NODES):
        raise ExportError("model too big: %d trees, %d nodes, %d leaves x %d classes (each at most %d)"
                          % (len(roots), len(nodes), len(leaves), forest.n_classes, MAX_NODES))
    width = forest.n_classes if voting == "soft" else 1
    threshold_dtype = np.float32 if dtype == "float32" else np.int64
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
        leaves=np.array(leaves, dtype=np.float64).reshape(len(leaves), width),
        classes=forest.classes,
    )
