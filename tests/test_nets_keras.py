"""emlcnn with Keras 3 Sequential models (torch backend): a small CNN on digits 8x8 and a
Conv1D network on a synthetic 1D signal task, trained here in seconds. Skipped without keras."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import mpyml  # noqa: E402
from mpyml import nets  # noqa: E402
from test_nets import device_predict, emlcnn_x64  # noqa: E402,F401

# keras on the torch backend warns about numpy 2 array copies.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _fit(model, X, y, epochs, lr=0.01):
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits_images():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def digits_cnn(digits_images):
    Xtr, _, ytr, _ = digits_images
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(8, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(16, 2, padding="valid", activation="relu"),
        layers.Dropout(0.1),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    return _fit(model, Xtr, ytr, epochs=12)


def signal_task(n=600, length=64, seed=0):
    """Three classes of noisy sine waves: periods of 16, 8 and 4 samples, random phase, 64 samples."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    t = np.arange(length)
    periods = np.array([16.0, 8.0, 4.0])[label]
    x = np.sin(2 * np.pi * t / periods[:, None] + rng.uniform(0, 2 * np.pi, (n, 1))) + 0.3 * rng.normal(size=(n, length))
    return x.astype(np.float32)[..., None], label


@pytest.fixture(scope="module")
def signal_cnn():
    X, y = signal_task()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((64, 1)),
        layers.Conv1D(8, 5, strides=2, activation="relu"),
        layers.AveragePooling1D(2),
        layers.Conv1D(8, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(3),
        layers.Softmax(),
    ])
    return _fit(model, X[:400], y[:400], epochs=20), X, y


def _check(model, Xtr, Xte, yte, tmp_path, name):
    expected = model.predict(Xte, verbose=0)
    stored = mpyml.export(model, tmp_path / (name + "_f32.bin"))
    out = device_predict(tmp_path / (name + "_f32.bin"), Xte, stored)
    assert np.abs(out - expected).max() < 1e-4
    q = mpyml.export(model, tmp_path / (name + "_i8.bin"), quantize="int8", representative_data=Xtr[:200])
    out8 = device_predict(tmp_path / (name + "_i8.bin"), Xte, q)
    assert np.array_equal(out8.view(np.uint32), q.outputs(Xte).view(np.uint32))
    float_accuracy = (expected.argmax(axis=1) == yte).mean()
    int8_accuracy = (out8.argmax(axis=1) == yte).mean()
    assert float_accuracy > 0.8, float_accuracy
    assert int8_accuracy >= float_accuracy - 0.01, (int8_accuracy, float_accuracy)
    return stored, q


def test_digits_cnn(emlcnn_x64, digits_images, digits_cnn, tmp_path):
    Xtr, Xte, ytr, yte = digits_images
    stored, q = _check(digits_cnn, Xtr, Xte, yte, tmp_path, "digits")
    assert [layer.kind for layer in stored.layers] == [nets.CONV2D, nets.DEPTHWISE_CONV2D, nets.MAX_POOL, nets.CONV2D, nets.DENSE]
    assert [layer.activation for layer in stored.layers] == ["relu", "relu6", "linear", "relu", "linear"]
    assert q.weights_bytes < stored.weights_bytes and q.arena_bytes == stored.arena_bytes // 4


def test_signal_conv1d(emlcnn_x64, signal_cnn, tmp_path):
    model, X, y = signal_cnn
    stored, _ = _check(model, X[:400], X[400:], y[400:], tmp_path, "signal")
    assert stored.input_shape == (1, 64, 1)
    assert [layer.kind for layer in stored.layers] == [nets.CONV2D, nets.AVG_POOL, nets.CONV2D, nets.AVG_POOL, nets.DENSE]


@pytest.mark.parametrize("layer,message", [
    (lambda: keras.layers.UpSampling2D(name="grow"), "layer 'grow' \\(UpSampling2D\\) is not supported"),
    (lambda: keras.layers.Conv2D(4, 3, activation="tanh", name="c"), "layer 'c': activation 'tanh' is not supported"),
    (lambda: keras.layers.Conv2D(4, 3, dilation_rate=2, name="d"), "layer 'd' \\(Conv2D\\): dilation"),
    (lambda: keras.layers.Conv2D(4, 3, strides=300, name="s"), "layer 's' \\(Conv2D\\): strides \\(300, 300\\)"),
])
def test_unsupported_layers_are_named(layer, message):
    model = keras.Sequential([keras.Input((8, 8, 1)), layer(), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(mpyml.ExportError, match=message):
        mpyml.export(model, "/nonexistent/m.bin")
