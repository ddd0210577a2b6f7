"""emlcnn on random stacks of the supported Keras layers (issue 11, item 5).

Every stack Keras accepts either exports, loads on the unix port and matches Keras
(float32 within 1e-4 relative; int8 bit-identical to StoredNet.outputs and close to
Keras), or is refused at export with an ExportError that names one of its layers.
Skipped without keras (torch backend)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, assume, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mpyml  # noqa: E402
from test_nets import device_predict, emlcnn_x64  # noqa: E402,F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

FLOAT_TOLERANCE = 1e-4  # relative to the largest |output|, as the other Keras tests (outputs there are <= 1)


def keras_outputs(model, X) -> np.ndarray:
    """Keras' own forward pass (what model.predict computes), rows flattened."""
    out = keras.ops.convert_to_numpy(model(X, training=False))
    return np.asarray(out, dtype=np.float32).reshape(len(X), -1)


def int8_tolerance(expected, stored) -> float:
    """How far int8 outputs may be from Keras: a tenth of the output spread plus two output steps.

    int8 rounds each activation to 1/255 of its calibrated range; a few layers of that stay within
    a tenth of the output range on the random stacks here (the worst seen is 0.06)."""
    spread = float(expected.max() - expected.min())
    step = float(stored.output_scale) if stored.output_activation == "linear" else 0.0
    return 0.1 * max(spread, 1e-3) + 2 * step


def check_float32(model, X, tmp_path: Path):
    """Exports float32, runs it on the unix port and compares with Keras."""
    expected = keras_outputs(model, X)
    f32 = mpyml.export(model, tmp_path / "f32.bin")
    out = device_predict(tmp_path / "f32.bin", X, f32)
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(out - expected).max() <= FLOAT_TOLERANCE * scale, (out, expected)
    return f32


def check_int8(model, X, representative, tmp_path: Path):
    """Exports int8, runs it on the unix port: bit-identical to StoredNet.outputs, close to Keras."""
    expected = keras_outputs(model, X)
    i8 = mpyml.export(model, tmp_path / "i8.bin", quantize="int8", representative_data=representative)
    out8 = device_predict(tmp_path / "i8.bin", X, i8)
    assert np.array_equal(out8.view(np.uint32), i8.outputs(X).view(np.uint32))
    assert np.abs(out8 - expected).max() <= int8_tolerance(expected, i8), (out8, expected)
    return i8


def check_exports_and_matches(model, X, representative, tmp_path: Path):
    return check_float32(model, X, tmp_path), check_int8(model, X, representative, tmp_path)


def assert_names_a_layer(model, error):
    assert any("'%s'" % layer.name in str(error) for layer in model.layers), str(error)


# ---------------------------------------------------------------- the textbook small CNN (issue 11 item 5)

@pytest.mark.parametrize("size,pool,padding", [(8, 2, "valid"), (8, 3, "valid"), (7, 2, "valid"), (7, 3, "valid"),
                                               (8, 2, "same"), (8, 3, "same"), (7, 2, "same"), (7, 3, "same")])
def test_conv_maxpool_flatten_dense(emlcnn_x64, tmp_path, size, pool, padding):
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([keras.Input((size, size, 1)), layers.Conv2D(2, 3, activation="relu", padding=padding),
                              layers.MaxPooling2D(pool, padding=padding), layers.Flatten(),
                              layers.Dense(3, activation="softmax")])
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, size, size, 1)).astype(np.float32)
    f32, _ = check_exports_and_matches(model, X, rng.uniform(0, 1, (200, size, size, 1)).astype(np.float32), tmp_path)
    conv_out = model.layers[0].output.shape[1:]
    pool_out = model.layers[1].output.shape[1:]
    assert f32.layers[0].out_shape == tuple(conv_out) and f32.layers[1].out_shape == tuple(pool_out)
    assert f32.layers[2].in_shape == tuple(pool_out)  # Flatten moves no data: dense reads the pool's output


def test_flatten_then_softmax_is_over_the_whole_output(emlcnn_x64, tmp_path):
    keras.utils.set_random_seed(1)
    layers = keras.layers
    model = keras.Sequential([keras.Input((6, 5, 2)), layers.Conv2D(3, 2, strides=2), layers.Flatten(),
                              layers.Softmax()])
    X = np.random.default_rng(1).normal(size=(20, 6, 5, 2)).astype(np.float32)
    check_exports_and_matches(model, X, X, tmp_path)


def test_batchnorm_without_a_layer_to_fold_into_relus_and_wide_strides(emlcnn_x64, tmp_path):
    """BatchNormalization first and after a pool (a 1x1 depthwise layer), ReLU6 after a relu conv, stride 3."""
    keras.utils.set_random_seed(2)
    layers = keras.layers
    model = keras.Sequential([keras.Input((11, 10, 2)), layers.BatchNormalization(name="bn_first"),
                              layers.Conv2D(3, 3, strides=3, padding="same", activation="relu"), layers.ReLU(max_value=6),
                              layers.MaxPooling2D(2, strides=1), layers.BatchNormalization(name="bn_pool"),
                              layers.Flatten(), layers.Dense(2)])
    rng = np.random.default_rng(2)
    model.set_weights([w + rng.uniform(0.1, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    X = rng.normal(size=(30, 11, 10, 2)).astype(np.float32)
    f32, _ = check_exports_and_matches(model, X, X, tmp_path)
    assert [(layer.kind, layer.activation) for layer in f32.layers] == [
        ("depthwise_conv2d", "linear"), ("conv2d", "relu6"), ("max_pool", "linear"), ("depthwise_conv2d", "linear"),
        ("dense", "linear")]
    assert f32.layers[1].stride == (3, 3) and f32.layers[1].out_shape == (4, 4, 3)


def test_softmax_over_channels_of_a_spatial_output_is_refused():
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3, activation="softmax", name="sm")])
    with pytest.raises(mpyml.ExportError, match="layer 'sm': softmax over a \\(4, 4, 3\\) output"):
        mpyml.export(model, "/nonexistent/m.bin")


# ---------------------------------------------------------------- random stacks

PADDINGS = st.sampled_from(["valid", "same"])
ACTIVATIONS = st.sampled_from([None, "relu", "relu6"])


def _size(one_d):
    return st.integers(1, 4).map(lambda k: (k,)) if one_d else st.tuples(st.integers(1, 4), st.integers(1, 4))


def _strides(one_d):
    return st.integers(1, 3).map(lambda s: (s,)) if one_d else st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def layer_spec(draw, one_d):
    kinds = ["conv", "conv", "maxpool", "avgpool", "bn", "relu", "dropout"]
    kinds.append("depthwise1d" if one_d else "depthwise")  # DepthwiseConv1D: refused, naming it
    kind = draw(st.sampled_from(kinds))
    if kind == "conv":
        return dict(kind=kind, filters=draw(st.integers(1, 4)), kernel=draw(_size(one_d)),
                    strides=draw(_strides(one_d)), padding=draw(PADDINGS), activation=draw(ACTIVATIONS),
                    use_bias=draw(st.booleans()))
    if kind in ("depthwise", "depthwise1d"):
        return dict(kind=kind, kernel=draw(_size(one_d)), strides=draw(_strides(one_d)), padding=draw(PADDINGS),
                    activation=draw(ACTIVATIONS))
    if kind in ("maxpool", "avgpool"):
        return dict(kind=kind, pool=draw(_size(one_d)), strides=draw(st.none() | _strides(one_d)),
                    padding=draw(PADDINGS))
    if kind == "relu":
        return dict(kind=kind, max_value=draw(st.sampled_from([None, 6.0])))
    return dict(kind=kind)


@st.composite
def stack_spec(draw):
    one_d = draw(st.booleans())
    channels = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 16)), channels) if one_d else (draw(st.integers(1, 9)), draw(st.integers(1, 9)), channels)
    body = draw(st.lists(layer_spec(one_d), min_size=1, max_size=4))
    head = draw(st.sampled_from(["flatten_dense", "global_dense", "flatten", "none", "flatten_softmax"]))
    units = draw(st.integers(1, 4))
    output = draw(st.sampled_from(["linear", "softmax", "sigmoid", "relu"]))
    return dict(one_d=one_d, shape=shape, body=body, head=head, units=units, output=output,
                seed=draw(st.integers(0, 2**16)))


def build_model(spec):
    """The Keras model of a spec, with random weights and biases; None if Keras refuses the stack."""
    L = keras.layers
    d = "1D" if spec["one_d"] else "2D"
    stack = []
    for i, s in enumerate(spec["body"]):
        name = "%s_%d" % (s["kind"], i)
        kind = s["kind"]
        if kind == "conv":
            stack.append(getattr(L, "Conv" + d)(s["filters"], s["kernel"], strides=s["strides"], padding=s["padding"],
                                                activation=s["activation"], use_bias=s["use_bias"], name=name))
        elif kind in ("depthwise", "depthwise1d"):
            stack.append(getattr(L, "DepthwiseConv" + d)(s["kernel"], strides=s["strides"], padding=s["padding"],
                                                         activation=s["activation"], name=name))
        elif kind in ("maxpool", "avgpool"):
            cls = getattr(L, ("MaxPooling" if kind == "maxpool" else "AveragePooling") + d)
            stack.append(cls(s["pool"], strides=s["strides"], padding=s["padding"], name=name))
        elif kind == "bn":
            stack.append(L.BatchNormalization(name=name))
        elif kind == "relu":
            stack.append(L.ReLU(max_value=s["max_value"], name=name))
        else:
            stack.append(L.Dropout(0.5, name=name))
    head = spec["head"]
    if head in ("flatten", "flatten_dense", "flatten_softmax"):
        stack.append(L.Flatten(name="flatten"))
    if head == "global_dense":
        stack.append(getattr(L, "GlobalAveragePooling" + d)(name="global"))
    if head in ("flatten_dense", "global_dense"):
        stack.append(L.Dense(spec["units"], activation=spec["output"], name="dense"))
    if head == "flatten_softmax":
        stack.append(L.Softmax(name="softmax"))
    try:
        model = keras.Sequential([keras.Input(spec["shape"])] + stack)
        if any(d is not None and d < 1 for d in model.output_shape):
            return None
    except Exception:  # Keras refuses the stack (a window larger than its input, ...)
        return None
    rng = np.random.default_rng(spec["seed"])
    weights = []
    for w in model.get_weights():
        if w.ndim == 1:  # biases, BatchNormalization's gamma, beta, mean, variance
            weights.append(rng.uniform(0.5, 1.5, w.shape) if np.all(w == 1) else rng.normal(0, 0.3, w.shape))
        else:
            fan_in = int(np.prod(w.shape[:-1]))
            weights.append(rng.normal(0, 1.5 / np.sqrt(fan_in), w.shape))
    model.set_weights([w.astype(np.float32) for w in weights])
    return model


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(spec=stack_spec())
def test_random_stacks_export_and_match_or_are_refused_by_name(emlcnn_x64, tmp_path, spec):
    model = build_model(spec)
    assume(model is not None)
    rng = np.random.default_rng(spec["seed"])
    shape = tuple(spec["shape"])
    X = rng.normal(size=(12,) + shape).astype(np.float32)
    # calibrated on data that covers the test rows: int8 clips what lies outside the calibrated ranges
    representative = np.concatenate([X, rng.normal(size=(200,) + shape).astype(np.float32)])
    try:
        check_float32(model, X, tmp_path)
    except mpyml.ExportError as e:
        assert_names_a_layer(model, e)
        event("refused: %s" % str(e).split(": ", 1)[-1][:40])
        return
    try:
        check_int8(model, X, representative, tmp_path)
        event("float32 and int8 match")
    except mpyml.ExportError as e:
        assert_names_a_layer(model, e)
        event("int8 refused: %s" % str(e).split(": ", 1)[-1][:40])
