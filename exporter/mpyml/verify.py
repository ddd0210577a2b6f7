"""Compares what the device predicts with scikit-learn and with mpyml's numpy reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import trees, treesfile

PROBA_TOLERANCE = 1e-6
SAMME_PROBA_TOLERANCE = 1e-5  # AdaBoost's softmax: float32 with the shared core's exp on the device
REGRESSION_RTOL = 1e-5


@dataclass
class Report:
    name: str
    kind: str
    n_rows: int
    n_agree: int  # rows where the device's prediction matches scikit-learn's (within REGRESSION_RTOL for regressors)
    max_proba_error: float | None  # classifiers: largest |device - scikit-learn| probability
    matches_reference: bool  # device output bit-identical to StoredForest.predict_index / predict_proba (SAMME proba within 1e-5)
    file_bytes: int
    ram_bytes: int
    proba_tolerance: float = PROBA_TOLERANCE

    @property
    def ok(self) -> bool:
        proba_ok = self.max_proba_error is None or self.max_proba_error <= self.proba_tolerance
        return self.n_agree == self.n_rows and proba_ok and self.matches_reference

    def summary(self) -> str:
        proba = "" if self.max_proba_error is None else ", max |proba error| %.2g" % self.max_proba_error
        return "%s: %d/%d rows agree with scikit-learn%s, %s numpy reference; file %d B, model RAM %d B: %s" % (
            self.name, self.n_agree, self.n_rows, proba,
            "matches" if self.matches_reference else "DIFFERS FROM", self.file_bytes, self.ram_bytes,
            "OK" if self.ok else "MISMATCH")


def regression_agrees(device: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|device - expected| <= 1e-5 relative to the value (or to the largest |expected| for values near 0)."""
    scale = np.maximum(np.abs(expected), np.abs(expected).max(initial=0.0) * 1e-3)
    return np.abs(device.astype(np.float64) - expected) <= REGRESSION_RTOL * scale


def verify_trees(estimator, X, path, feature_dtype="auto", voting="soft", run=None, name=None) -> Report:
    """Exports a tree model (any the registry converts to a forest: trees, forests, Bagging of trees)
    to `path`, predicts X with `run(path, X, stored)` and compares with the estimator's predict."""
    from . import registry

    forest = registry.lookup(estimator, families=("trees",)).convert(estimator)
    stored = trees.lower(forest, dtype=registry.forest_feature_dtype(forest, feature_dtype), voting=voting)
    file_bytes = treesfile.save(stored, path)
    pred, proba = run(path, X, stored)
    X_sklearn = stored.cast_features(X).astype(np.float32)
    if stored.kind == trees.CLASSIFIER:
        expected = estimator.predict(X_sklearn)
        n_agree = int(np.sum(stored.classes[pred] == expected))
        max_error = float(np.abs(proba - estimator.predict_proba(X_sklearn)).max())
        if stored.voting == "samme":
            same_proba = np.allclose(proba, stored.predict_proba(X), rtol=0, atol=SAMME_PROBA_TOLERANCE)
        else:
            same_proba = np.array_equal(proba, stored.predict_proba(X))
        same = np.array_equal(pred, stored.predict_index(X)) and same_proba
    else:
        n_agree = int(np.sum(regression_agrees(pred, estimator.predict(X_sklearn))))
        max_error = None
        same = np.array_equal(pred, stored.predict_index(X))
    tolerance = SAMME_PROBA_TOLERANCE if stored.voting == "samme" else PROBA_TOLERANCE
    return Report(name or type(estimator).__name__, stored.kind, len(X), n_agree, max_error, bool(same),
                  file_bytes, stored.ram_bytes(), tolerance)
