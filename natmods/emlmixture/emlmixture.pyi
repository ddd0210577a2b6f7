"""emlmixture: GaussianMixture, BayesianGaussianMixture, GaussianNB, EllipticEnvelope and KMeans
on the device (docs/formats.md, mpyml-mixture). Rows are array('f'); methods with `out` fill it
for every row of X (rows back to back) and allocate nothing."""

from array import array

class Model:
    loaded: bool
    kind: str | None              # 'mixture' | 'naive_bayes' | 'envelope' | 'kmeans'
    covariance_type: str | None   # 'full' | 'tied' | 'diag' | 'spherical'
    n_features: int | None
    n_components: int | None
    classes: list | None          # naive_bayes: classes_
    threshold: float | None       # mixture: is_outlier threshold; envelope: offset_
    max_features: int
    max_components: int
    def predict(self, x: array) -> int: ...          # component, class index, centre, or +1/-1 (envelope)
    def predict_proba(self, X: array, out: array) -> array: ...      # mixture, naive_bayes: n_rows * K
    def score_samples(self, X: array, out: array) -> array: ...      # mixture: log-likelihood; envelope: -mahalanobis
    def decision_function(self, X: array, out: array) -> array: ...  # envelope
    def mahalanobis(self, X: array, out: array) -> array: ...        # envelope
    def transform(self, X: array, out: array) -> array: ...          # kmeans: distances, n_rows * K
    def is_outlier(self, x: array) -> bool: ...      # mixture (with a threshold), envelope
    def partial_fit(self, x: array) -> int: ...      # kmeans: moves the nearest centre; returns it
    def unload(self) -> None: ...

def new(max_features: int, max_components: int) -> Model: ...
def load_model(model: Model, f) -> None: ...
def save_model(model: Model, f) -> None: ...        # kmeans models
