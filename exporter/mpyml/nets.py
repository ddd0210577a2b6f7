"""Small sequential networks: the intermediate representation, int8 quantization
and the numpy reference of the device arithmetic (natmods/common/mpyml_nets.h).

A fitted scikit-learn MLPClassifier/MLPRegressor or a Keras 3 Sequential model
is converted once into a :class:`Net`: layers with (height, width, channels)
shapes, float32 weights, fused activations and folded batch normalization.
:func:`lower` makes the :class:`StoredNet` the model file holds (float32, or
int8 with calibrated scales), and :meth:`StoredNet.outputs` computes what the
device computes: bit for bit for int8, to float32 rounding for float32.
Activations are height x width x channels, channels fastest (Keras' channels_last);
Conv1D is a Conv2D of height 1 and Dense reads its input flattened in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ExportError
from .labels import check_columns, feature_names_of, label_type

DENSE, CONV2D, DEPTHWISE_CONV2D, MAX_POOL, AVG_POOL = "dense", "conv2d", "depthwise_conv2d", "max_pool", "avg_pool"
LAYER_CODES = {DENSE: 1, CONV2D: 2, DEPTHWISE_CONV2D: 3, MAX_POOL: 4, AVG_POOL: 5}
ACTIVATIONS = {"linear": 0, "relu": 1, "relu6": 2}
OUTPUT_ACTIVATIONS = {"linear": 0, "softmax": 1, "sigmoid": 2}
DTYPES = {"float32": 1, "int8": 2}
MAX_DIM = 65535  # heights, widths, channels and outputs are 16-bit in the file
MAX_LAYERS = 255
MAX_KERNEL = 255
MAX_STRIDE = 255  # strides and kernels are 8-bit in the file
MAX_ITEMS = 1 << 28  # elements of any activation or weight array
MAX_ACC = 2**31 - 1  # an int8 layer's |bias| + taps * 255 * 128 must fit the int32 accumulator


@dataclass
class Layer:
    kind: str  # DENSE, CONV2D, DEPTHWISE_CONV2D, MAX_POOL, AVG_POOL
    name: str  # the source's layer name, for messages
    in_shape: tuple  # (height, width, channels)
    out_shape: tuple
    activation: str = "linear"  # fused: linear, relu, relu6
    # dense (out, in); conv2d (out_c, kh, kw, in_c); depthwise (kh, kw, c); pools: None
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None  # float32 (out_c,)
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)  # rows above, columns left of the input (zeros; ignored by pools)


@dataclass
class Net:
    input_shape: tuple
    layers: list
    output_activation: str = "linear"  # linear, softmax, sigmoid
    source: str = ""
    classes: list | None = None  # a classifier's class labels (classes_), else None
    feature_names: list | None = None  # feature_names_in_ (str), else None

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.layers[-1].out_shape))

    def predict(self, X, trace=None) -> np.ndarray:
        """Float32 forward pass (numpy): what a float32 StoredNet computes up to summation order."""
        x = _as_input(X, self.input_shape).astype(np.float32)
        for layer in self.layers:
            x = _float_layer(layer, x)
            if trace is not None:
                trace.append(x)
        return _output_activation(x.reshape(len(x), -1), self.output_activation)


def _as_input(X, shape) -> np.ndarray:
    X = np.asarray(X)
    n = int(np.prod(shape))
    if X.ndim == 1:
        X = X[None, :]
    if X.size % n or X.reshape(len(X), -1).shape[1] != n:
        raise ValueError("expected rows of %d values (shape %s), got array of shape %s" % (n, shape, X.shape))
    return X.reshape((len(X),) + tuple(shape))


# ---------------------------------------------------------------- shapes


def conv_output(size: int, kernel: int, stride: int, padding: str, what: str) -> tuple[int, int]:
    """(output size, padding before) along one axis, as Keras computes them."""
    if padding == "valid":
        if size < kernel:
            raise ExportError("%s: input %d smaller than kernel %d" % (what, size, kernel))
        return (size - kernel) // stride + 1, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2
    raise ExportError("%s: padding '%s' is not supported (valid or same)" % (what, padding))


def spatial_layer(kind, name, in_shape, kernel, stride, padding, out_c, where=None, **kw) -> Layer:
    """A conv or pool Layer; `where` names the source layer in errors (default: its name)."""
    where = where or "layer '%s'" % name
    oh, pt = conv_output(in_shape[0], kernel[0], stride[0], padding, where)
    ow, pl = conv_output(in_shape[1], kernel[1], stride[1], padding, where)
    return Layer(kind, name, tuple(in_shape), (oh, ow, out_c), kernel=tuple(kernel), stride=tuple(stride),
                 padding=(pt, pl), **kw)


# ---------------------------------------------------------------- float32 reference


def _windows(x, layer, fill):
    """Yields (ky, kx, patch): the input under tap (ky, kx) of every output position, (n, oh, ow, c)."""
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl = layer.padding
    oh, ow = layer.out_shape[:2]
    h, w = x.shape[1:3]
    pb = max((oh - 1) * sh + kh - h - pt, 0)
    pr = max((ow - 1) * sw + kw - w - pl, 0)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw, :]


def _accumulate(layer, x, weights, acc_dtype):
    """Sum of products of a dense, conv2d or depthwise layer; x already centred for int8."""
    n = len(x)
    if layer.kind == DENSE:
        return x.reshape(n, -1).astype(acc_dtype) @ weights.reshape(weights.shape[0], -1).T.astype(acc_dtype)
    acc = np.zeros((n,) + tuple(layer.out_shape), dtype=acc_dtype)
    for ky, kx, patch in _windows(x.astype(acc_dtype), layer, 0):
        if layer.kind == CONV2D:
            acc += patch @ weights[:, ky, kx, :].T.astype(acc_dtype)
        else:
            acc += patch * weights[ky, kx, :].astype(acc_dtype)
    return acc


def _pool_count(layer) -> int:
    return layer.kernel[0] * layer.kernel[1]


def _clamp_float(x, activation):
    if activation == "relu":
        return np.maximum(x, np.float32(0))
    if activation == "relu6":
        return np.minimum(np.maximum(x, np.float32(0)), np.float32(6))
    return x


def _float_layer(layer, x):
    n = len(x)
    if layer.kind in (DENSE, CONV2D, DEPTHWISE_CONV2D):
        y = _accumulate(layer, x, layer.weights, np.float32) + layer.bias
    elif layer.kind == MAX_POOL:
        y = np.full((n,) + tuple(layer.out_shape), -np.inf, dtype=np.float32)
        for _, _, patch in _windows(x, layer, -np.inf):
            y = np.maximum(y, patch)
    else:
        y = np.zeros((n,) + tuple(layer.out_shape), dtype=np.float32)
        for _, _, patch in _windows(x, layer, 0):
            y = y + patch
        y = y * np.float32(1.0 / _pool_count(layer))
    return _clamp_float(y.astype(np.float32).reshape((n,) + tuple(layer.out_shape)), layer.activation)


# ---------------------------------------------------------------- float32 helpers of the device (mpyml_math.h)

F32 = np.float32
LOG2E = F32(float.fromhex("0x1.715476p+0"))
LN2_HI = F32(float.fromhex("0x1.62e4p-1"))  # few mantissa bits: n * LN2_HI is exact
LN2_LO = F32(float.fromhex("0x1.7f7d1cp-20"))
EXP_POLY = [F32(float.fromhex(h)) for h in (
    "0x1.a01a02p-13", "0x1.6c16c2p-10", "0x1.111112p-7", "0x1.555556p-5", "0x1.555556p-3", "0x1p-1", "0x1p+0", "0x1p+0")]
EXP_MIN, EXP_MAX = F32(-87.0), F32(88.0)
SIGMOID_LIMIT = F32(80.0)
RECIP_MAGIC = 0x7EF311C3


def expf(x) -> np.ndarray:
    """mpyml_expf: e**x in float32 with the device's exact operations (clamped to [-87, 88])."""
    x = np.minimum(np.maximum(np.asarray(x, dtype=F32), EXP_MIN), EXP_MAX)
    t = (x * LOG2E).astype(F32)
    n = (t + np.where(t >= 0, F32(0.5), F32(-0.5))).astype(F32).astype(np.int32)
    nf = n.astype(F32)
    r = (x - (nf * LN2_HI).astype(F32)).astype(F32)
    r = (r - (nf * LN2_LO).astype(F32)).astype(F32)
    p = np.full_like(r, EXP_POLY[0])
    for c in EXP_POLY[1:]:
        p = ((p * r).astype(F32) + c).astype(F32)
    scale = ((n + 127).astype(np.uint32) << np.uint32(23)).view(F32)
    return (p * scale).astype(F32)


def recipf(d) -> np.ndarray:
    """mpyml_recipf: 1/d for positive normal float32 d, without a division (Newton-Raphson)."""
    d = np.asarray(d, dtype=F32)
    r = (np.uint32(RECIP_MAGIC) - d.view(np.uint32)).astype(np.uint32).view(F32)
    for _ in range(4):
        r = (r * (F32(2) - (d * r).astype(F32)).astype(F32)).astype(F32)
    return r


def _output_activation(y, activation) -> np.ndarray:
    """Softmax or sigmoid of float32 rows, with the device's operations and order."""
    y = np.asarray(y, dtype=F32)
    if activation == "softmax":
        m = y.max(axis=1, keepdims=True)
        e = expf((y - m).astype(F32))
        s = np.zeros(len(y), dtype=F32)
        for j in range(y.shape[1]):
            s = (s + e[:, j]).astype(F32)
        return (e * recipf(s)[:, None]).astype(F32)
    if activation == "sigmoid":
        x = np.minimum(np.maximum(y, -SIGMOID_LIMIT), SIGMOID_LIMIT)
        return recipf((F32(1) + expf(-x)).astype(F32))
    return y


# ---------------------------------------------------------------- converters


def net_from_sklearn(estimator) -> Net:
    """A fitted MLPClassifier or MLPRegressor as a Net of dense layers."""
    name = type(estimator).__name__
    if not hasattr(estimator, "coefs_"):
        raise ExportError("%s is not a fitted MLPClassifier/MLPRegressor" % name)
    if estimator.activation not in ("relu", "identity"):
        raise ExportError("%s: hidden activation '%s' is not supported (relu or identity)" % (name, estimator.activation))
    if hasattr(estimator, "classes_") and estimator.out_activation_ == "logistic" and estimator.n_outputs_ > 1:
        # One sigmoid per label, each its own yes/no: net.classes could only name the outputs as if one class won.
        raise ExportError("%s: multilabel classifiers (y with %d columns) are not supported; fit one with a 1-D y"
                          % (name, estimator.n_outputs_))
    hidden = "relu" if estimator.activation == "relu" else "linear"
    out_activation = {"softmax": "softmax", "logistic": "sigmoid", "identity": "linear"}.get(estimator.out_activation_)
    if out_activation is None:
        raise ExportError("%s: output activation '%s' is not supported" % (name, estimator.out_activation_))
    layers = []
    n_in = estimator.coefs_[0].shape[0]
    for i, (coef, intercept) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        last = i == len(estimator.coefs_) - 1
        layers.append(Layer(DENSE, "dense_%d" % i, (1, 1, coef.shape[0]), (1, 1, coef.shape[1]),
                            activation="linear" if last else hidden,
                            weights=np.ascontiguousarray(coef.T, dtype=np.float32),
                            bias=np.asarray(intercept, dtype=np.float32)))
    classes = None
    if hasattr(estimator, "classes_"):
        classes = list(np.asarray(estimator.classes_, dtype=object))
        try:
            label_type(classes)
        except ValueError as e:
            raise ExportError("%s: classes_: %s" % (name, e)) from None
    return _checked(Net((1, 1, n_in), layers, out_activation, source=name, classes=classes,
                        feature_names=feature_names_of(estimator)))


def _keras_activation(obj) -> str:
    fn = getattr(obj, "activation", obj)
    name = getattr(fn, "__name__", str(fn))
    return {"linear": "linear", "relu": "relu", "relu6": "relu6", "softmax": "softmax", "sigmoid": "sigmoid"}.get(name, name)


def _np(value) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _strides(value, one_d, where) -> tuple:
    stride = (1,) + _pair(value)[:1] if one_d else _pair(value)
    if any(not 1 <= s <= MAX_STRIDE for s in stride):
        raise ExportError("%s: strides %s are not supported (1..%d)" % (where, stride, MAX_STRIDE))
    return tuple(int(s) for s in stride)


def net_from_keras(model) -> Net:
    """A built Keras 3 Sequential model as a Net; refuses any layer it cannot run, naming it."""
    shape = tuple(model.input_shape[1:])
    if len(shape) == 1:
        shape = (1, 1) + shape
    elif len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or any(s is None for s in shape):
        raise ExportError("model input shape %s is not supported: use (n,), (length, channels) or (h, w, c)"
                          % (model.input_shape,))
    input_shape = tuple(int(s) for s in shape)
    layers: list[Layer] = []
    cur = input_shape  # Keras' shape of the current activation, (1, 1, n) after Flatten

    def stored_shape():  # the device's shape of the current activation: Flatten moves no data
        return layers[-1].out_shape if layers else input_shape
    output_activation = "linear"

    def add(layer, activation):
        layers.append(layer)
        fuse(activation, layer.name)

    def fuse(activation, name):
        nonlocal output_activation
        if output_activation != "linear":
            raise ExportError("layer '%s' comes after the %s, which must be the last layer" % (name, output_activation))
        if activation == "linear":
            return
        if activation == "softmax" and cur[:2] != (1, 1):
            raise ExportError("layer '%s': softmax over a %s output is not supported (flatten first)" % (name, cur))
        if activation in ("softmax", "sigmoid"):
            output_activation = activation
            return
        if activation not in ACTIVATIONS:
            raise ExportError("layer '%s': activation '%s' is not supported (relu, relu6, softmax, sigmoid)" % (name, activation))
        if not layers:
            raise ExportError("layer '%s': %s must follow a layer it can be fused into" % (name, activation))
        # relu and relu6 compose to relu6 if either is relu6, else relu
        layers[-1].activation = "relu6" if "relu6" in (activation, layers[-1].activation) else activation

    for kl in model.layers:
        cls = type(kl).__name__
        name = kl.name
        where = "layer '%s' (%s)" % (name, cls)
        if output_activation != "linear" and cls not in ("Dropout",):
            raise ExportError("%s comes after the %s, which must be the last layer" % (where, output_activation))
        cfg = kl.get_config()
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ExportError("%s: only data_format='channels_last' is supported" % where)
        if cls in ("InputLayer", "Dropout"):
            continue
        if cls == "Flatten":
            cur = (1, 1, int(np.prod(cur)))
        elif cls == "Dense":
            if cur[:2] != (1, 1):
                raise ExportError("%s: Dense needs a flat input (add Flatten), got shape %s" % (where, cur))
            kernel = _np(kl.kernel)
            bias = _np(kl.bias) if kl.use_bias else np.zeros(kernel.shape[1])
            layer = Layer(DENSE, name, stored_shape(), (1, 1, kernel.shape[1]), weights=kernel.T.astype(np.float32),
                          bias=bias.astype(np.float32))
            cur = layer.out_shape
            add(layer, _keras_activation(kl))
        elif cls in ("Conv2D", "Conv1D", "DepthwiseConv2D"):
            one_d = cls == "Conv1D"
            if any(d != 1 for d in _pair(cfg.get("dilation_rate", 1))) or cfg.get("groups", 1) != 1:
                raise ExportError("%s: dilation and groups are not supported" % where)
            kernel = _np(kl.kernel)
            if cls == "DepthwiseConv2D":
                if kernel.shape[3] != 1:
                    raise ExportError("%s: depth_multiplier %d is not supported (1 only)" % (where, kernel.shape[3]))
                weights = kernel[:, :, :, 0]
                out_c = cur[2]
                kind = DEPTHWISE_CONV2D
                ksize = weights.shape[:2]
            else:
                if one_d:
                    kernel = kernel[None]  # (1, k, in_c, out_c)
                weights = np.transpose(kernel, (3, 0, 1, 2))
                out_c = weights.shape[0]
                kind = CONV2D
                ksize = weights.shape[1:3]
            if (weights.shape[-1] if kind == CONV2D else weights.shape[2]) != cur[2]:
                raise ExportError("%s: kernel expects %d input channels, input has %d" % (where, weights.shape[-1], cur[2]))
            stride = _strides(cfg["strides"], one_d, where)
            bias = _np(kl.bias) if kl.use_bias else np.zeros(out_c)
            layer = spatial_layer(kind, name, cur, ksize, stride, cfg["padding"], out_c, where,
                                  weights=weights.astype(np.float32), bias=bias.astype(np.float32))
            cur = layer.out_shape
            add(layer, _keras_activation(kl))
        elif cls == "BatchNormalization":
            if cur != stored_shape():
                raise ExportError("%s: BatchNormalization after Flatten is not supported (put it before)" % where)
            axis = cfg.get("axis", -1)
            if axis not in (-1, len(model.input_shape) - 1) and not (isinstance(axis, (list, tuple)) and list(axis) in ([-1], [len(model.input_shape) - 1])):
                raise ExportError("%s: only the channel axis is supported" % where)
            gamma = _np(kl.gamma) if kl.scale else 1.0
            beta = _np(kl.beta) if kl.center else 0.0
            scale = gamma / np.sqrt(_np(kl.moving_variance) + kl.epsilon) * np.ones(cur[2])
            prev = layers[-1] if layers else None
            if prev is None or prev.kind not in (DENSE, CONV2D, DEPTHWISE_CONV2D) or prev.activation != "linear":
                # nothing to fold into: a 1x1 depthwise layer computes x * scale + shift per channel
                layers.append(Layer(DEPTHWISE_CONV2D, name, cur, cur, weights=scale.reshape(1, 1, -1).astype(np.float32),
                                    bias=(beta - _np(kl.moving_mean) * scale).astype(np.float32)))
                continue
            w = prev.weights.astype(np.float64)
            if prev.kind == DEPTHWISE_CONV2D:
                w = w * scale
            else:
                w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            prev.weights = w.astype(np.float32)
            prev.bias = ((prev.bias - _np(kl.moving_mean)) * scale + beta).astype(np.float32)
        elif cls in ("MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D"):
            one_d = cls.endswith("1D")
            pool = (1,) + _pair(cfg["pool_size"])[:1] if one_d else _pair(cfg["pool_size"])
            stride = _strides(cfg.get("strides") or cfg["pool_size"], one_d, where)
            kind = MAX_POOL if cls.startswith("Max") else AVG_POOL
            layer = spatial_layer(kind, name, cur, pool, stride, cfg["padding"], cur[2], where)
            if kind == AVG_POOL and layer.padding != (0, 0) or kind == AVG_POOL and cfg["padding"] == "same" and \
                    ((layer.out_shape[0] - 1) * stride[0] + pool[0] != cur[0] or (layer.out_shape[1] - 1) * stride[1] + pool[1] != cur[1]):
                raise ExportError("%s: AveragePooling with padding='same' that pads is not supported (use valid)" % where)
            layers.append(layer)
            cur = layer.out_shape
        elif cls in ("GlobalAveragePooling2D", "GlobalAveragePooling1D"):
            if cfg.get("keepdims"):
                raise ExportError("%s: keepdims=True is not supported" % where)
            layer = Layer(AVG_POOL, name, cur, (1, 1, cur[2]), kernel=cur[:2], stride=(1, 1))
            layers.append(layer)
            cur = layer.out_shape
        elif cls in ("ReLU", "Activation", "Softmax"):
            if cls == "ReLU":
                if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
                    raise ExportError("%s: negative_slope/threshold are not supported" % where)
                mv = cfg.get("max_value")
                activation = "relu" if mv is None else ("relu6" if float(mv) == 6.0 else "unsupported")
                if activation == "unsupported":
                    raise ExportError("%s: max_value %s is not supported (None or 6)" % (where, mv))
            elif cls == "Softmax":
                activation = "softmax"
            else:
                activation = _keras_activation(kl)
            fuse(activation, name)
        else:
            raise ExportError("%s is not supported by emlcnn (supported: Conv1D, Conv2D, DepthwiseConv2D, "
                              "MaxPooling, AveragePooling, GlobalAveragePooling, Dense, Flatten, ReLU, "
                              "Softmax, BatchNormalization, Dropout)" % where)
    if not layers:
        raise ExportError("the model has no layer emlcnn can run: %s compute nothing on the device"
                          % ", ".join("'%s' (%s)" % (kl.name, type(kl).__name__) for kl in model.layers))
    return _checked(Net(input_shape, layers, output_activation, source="keras " + type(model).__name__))


def _checked(net: Net) -> Net:
    """The loader's limits (docs/formats.md, Limits), checked at export so that what exports also loads."""
    if len(net.layers) > MAX_LAYERS:
        raise ExportError("%d layers; at most %d" % (len(net.layers), MAX_LAYERS))
    for layer in net.layers:
        for v in tuple(layer.in_shape) + tuple(layer.out_shape):
            if not 1 <= v <= MAX_DIM:
                raise ExportError("layer '%s': shape %s -> %s out of range 1..%d" % (layer.name, layer.in_shape, layer.out_shape, MAX_DIM))
        if max(layer.kernel) > MAX_KERNEL:
            raise ExportError("layer '%s': kernel %s larger than %d" % (layer.name, layer.kernel, MAX_KERNEL))
        n_weights = 0 if layer.weights is None else layer.weights.size
        if max(int(np.prod(layer.out_shape)), n_weights) > MAX_ITEMS:
            raise ExportError("layer '%s': more than %d elements in its output or weights" % (layer.name, MAX_ITEMS))
    return net


def convert(model) -> Net:
    """A Net from a fitted MLPClassifier/MLPRegressor or a Keras 3 Sequential model (mpyml.registry)."""
    from .registry import lookup

    return lookup(model, families=("nets",)).convert(model)


# ---------------------------------------------------------------- lowering and int8


@dataclass
class QuantParams:
    scale: float
    zero_point: int


def _range_params(lo: float, hi: float) -> QuantParams:
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if not scale > 0 or not math.isfinite(scale):
        scale = 1.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return QuantParams(float(np.float32(scale)), zp)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """m as (mult, shift) with m ~= mult * 2**-shift, mult < 2**31, 1 <= shift <= 62."""
    if m <= 0:
        return 0, 1
    frac, exp = math.frexp(m)
    mult = int(round(frac * (1 << 31)))
    if mult == 1 << 31:
        mult //= 2
        exp += 1
    shift = 31 - exp
    if shift < 1:
        raise ExportError("requantization multiplier %g too large (weights or scales out of range)" % m)
    if shift > 62:
        mult >>= shift - 62
        shift = 62
    return mult, shift


def requantize(acc, mult, shift, zero_point, lo, hi) -> np.ndarray:
    """The device's requantization: clamp(zero_point + ((acc * mult + 2**(shift-1)) >> shift), lo, hi)."""
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    v = (acc * mult + (np.int64(1) << (shift - 1))) >> shift
    return np.clip(v + zero_point, lo, hi)


@dataclass
class StoredLayer:
    kind: str
    name: str
    in_shape: tuple
    out_shape: tuple
    activation: str
    kernel: tuple
    stride: tuple
    padding: tuple
    weights: np.ndarray | None  # float32, or int8 for int8 models; None for pools
    bias: np.ndarray | None  # float32, or int32; float32 avg pool: [1/count]
    mult: np.ndarray | None = None  # int32 per output channel (int8 dense/conv), [1] for int8 avg pool
    shift: np.ndarray | None = None
    in_zp: int = 0
    out_zp: int = 0
    act_min: int = -128
    act_max: int = 127

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def params(self, dtype) -> list[np.ndarray]:
        """The arrays of this layer's parameter block, in file order."""
        if self.kind == MAX_POOL:
            return []
        if dtype == "float32":
            if self.kind == AVG_POOL:
                return [np.asarray(self.bias, dtype="<f4")]
            return [np.asarray(self.weights, dtype="<f4").ravel(), np.asarray(self.bias, dtype="<f4")]
        if self.kind == AVG_POOL:
            return [np.asarray(self.mult, dtype="<i4"), np.asarray(self.shift, dtype="<i4")]
        weights = np.asarray(self.weights, dtype="i1")
        if self.kind == CONV2D:  # int8 conv2d is stored [kh][kw][in_c][out_c]: the device sums channel blocks
            weights = np.transpose(weights, (1, 2, 3, 0))
        return [np.asarray(self.bias, dtype="<i4"), np.asarray(self.mult, dtype="<i4"),
                np.asarray(self.shift, dtype="<i4"), np.ascontiguousarray(weights).ravel()]

    def params_bytes(self, dtype) -> int:
        n = sum(a.nbytes for a in self.params(dtype))
        return (n + 3) & ~3


@dataclass
class StoredNet:
    dtype: str  # float32 or int8
    input_shape: tuple
    layers: list
    output_activation: str
    input_scale: float = 0.0  # int8 only: real = scale * (q - zero_point)
    input_zero_point: int = 0
    output_scale: float = 0.0
    output_zero_point: int = 0
    source: str = ""
    file_inv_scale: float | None = None  # int8: the file's 1/input scale, which the device uses as written
    classes: list | None = None  # a classifier's class labels (classes_), else None
    feature_names: list | None = None  # feature_names_in_ (str), else None

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def input_inv_scale(self) -> float:
        if self.dtype != "int8":
            return 0.0
        return self.file_inv_scale if self.file_inv_scale is not None else float(np.float32(1.0 / self.input_scale))

    @property
    def weights_bytes(self) -> int:
        """Flash: the parameter blocks of all layers."""
        return sum(layer.params_bytes(self.dtype) for layer in self.layers)

    @property
    def arena_bytes(self) -> int:
        """RAM for activations: two ping-pong buffers of the largest activation (each padded to 4 bytes)."""
        item = 4 if self.dtype == "float32" else 1
        largest = max([self.n_inputs] + [layer.n_out for layer in self.layers])
        return 2 * ((largest * item + 3) & ~3)

    def summary(self) -> str:
        return "%s%s net, %d layer%s, %d -> %d: weights %d B (flash), arena %d B (RAM)" % (
            self.source + " " if self.source else "", self.dtype, len(self.layers), "" if len(self.layers) == 1 else "s",
            self.n_inputs, self.n_outputs, self.weights_bytes, self.arena_bytes)

    def quantize_input(self, X) -> np.ndarray:
        """Float rows to the int8 input codes the device computes from array('f')."""
        with np.errstate(over="ignore", invalid="ignore"):
            x = (np.asarray(X, dtype=np.float32) * np.float32(self.input_inv_scale)).astype(np.float32)
            x = np.where(np.isnan(x), np.float32(0), np.clip(x, np.float32(-1e9), np.float32(1e9))).astype(np.float32)
            q = (x + np.where(x >= 0, np.float32(0.5), np.float32(-0.5))).astype(np.float32)
        q = q.astype(np.int64) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def predict(self, X) -> np.ndarray:
        """Class labels (n,) for a classifier with labels, as scikit-learn's predict (multi-label:
        the (n, n_outputs) 0/1 indicator matrix); else the outputs (n, n_outputs) float32, as `outputs`.
        Raises ValueError for a DataFrame whose columns are not the feature names of the fit, in order."""
        if self.classes is None:
            return self.outputs(X)
        index = self.predict_index(X)
        return index if index.ndim == 2 else np.asarray(self.classes, dtype=object)[index].astype(
            np.asarray(self.classes).dtype)

    def predict_index(self, X) -> np.ndarray:
        """Class indices (n,) int64 from the device's outputs: argmax (the first of equal maxima), or for
        one sigmoid output `output > 0.5`; several sigmoid outputs (multi-label) give the (n, n_outputs)
        0/1 matrix of `output > 0.5`, as scikit-learn's MLPClassifier."""
        y = self.outputs(X)
        if self.output_activation == "sigmoid":
            index = (y > np.float32(0.5)).astype(np.int64)
            return index[:, 0] if y.shape[1] == 1 else index
        return np.argmax(y, axis=1).astype(np.int64)

    def outputs(self, X, int8_input: bool = False) -> np.ndarray:
        """Outputs (n, n_outputs) float32 as the device's net.predict computes them; X float rows, or int8
        codes if int8_input."""
        check_columns(X, self.feature_names)
        x = _as_input(X, self.input_shape)
        n = len(x)
        if self.dtype == "float32":
            x = x.astype(np.float32)
            for layer in self.layers:
                x = _float_layer(Layer(layer.kind, layer.name, layer.in_shape, layer.out_shape, layer.activation,
                                       layer.weights, layer.bias, layer.kernel, layer.stride, layer.padding), x)
            return _output_activation(x.reshape(n, -1), self.output_activation)
        q = x.astype(np.int64) if int8_input else self.quantize_input(x).astype(np.int64)
        for layer in self.layers:
            q = _int8_layer(layer, q.reshape((n,) + tuple(layer.in_shape)))
        y = ((q.reshape(n, -1) - self.output_zero_point).astype(np.float32) * np.float32(self.output_scale)).astype(np.float32)
        return _output_activation(y, self.output_activation)


def _int8_layer(layer: StoredLayer, q: np.ndarray) -> np.ndarray:
    n = len(q)
    if layer.kind == DENSE:  # the input zero point is folded into the stored bias
        acc = _accumulate(layer, q, layer.weights, np.int64) + layer.bias.astype(np.int64)
        return requantize(acc, layer.mult, layer.shift, layer.out_zp, layer.act_min, layer.act_max)
    if layer.kind in (CONV2D, DEPTHWISE_CONV2D):
        acc = _accumulate(layer, q - layer.in_zp, layer.weights, np.int64) + layer.bias.astype(np.int64)
        acc = acc.reshape((n,) + tuple(layer.out_shape))
        return requantize(acc, layer.mult, layer.shift, layer.out_zp, layer.act_min, layer.act_max)
    if layer.kind == MAX_POOL:
        y = np.full((n,) + tuple(layer.out_shape), -129, dtype=np.int64)
        for _, _, patch in _windows(q, layer, -129):
            y = np.maximum(y, patch)
        return np.clip(y, layer.act_min, layer.act_max)
    acc = np.zeros((n,) + tuple(layer.out_shape), dtype=np.int64)
    for _, _, patch in _windows(q - layer.in_zp, layer, 0):
        acc = acc + patch
    return requantize(acc, layer.mult[0], layer.shift[0], layer.out_zp, layer.act_min, layer.act_max)


def _stored_float(layer: Layer) -> StoredLayer:
    bias = layer.bias
    if layer.kind == AVG_POOL:
        bias = np.array([1.0 / _pool_count(layer)], dtype=np.float32)
    return StoredLayer(layer.kind, layer.name, layer.in_shape, layer.out_shape, layer.activation, layer.kernel,
                       layer.stride, layer.padding, layer.weights, bias)


def _clamps(activation, q: QuantParams) -> tuple[int, int]:
    lo, hi = -128, 127
    if activation in ("relu", "relu6"):
        lo = max(lo, q.zero_point)
    if activation == "relu6":
        hi = min(hi, q.zero_point + int(round(6.0 / q.scale)))
    return lo, hi


def _quantize_layer(layer: Layer, q_in: QuantParams, out_range) -> tuple[StoredLayer, QuantParams]:
    base = dict(kind=layer.kind, name=layer.name, in_shape=layer.in_shape, out_shape=layer.out_shape,
                activation=layer.activation, kernel=layer.kernel, stride=layer.stride, padding=layer.padding)
    if layer.kind in (MAX_POOL, AVG_POOL):
        q_out = q_in
        lo, hi = _clamps(layer.activation, q_out)
        if layer.kind == MAX_POOL:
            return StoredLayer(weights=None, bias=None, in_zp=q_in.zero_point, out_zp=q_out.zero_point,
                               act_min=lo, act_max=hi, **base), q_out
        mult, shift = quantize_multiplier(1.0 / _pool_count(layer))
        return StoredLayer(weights=None, bias=None, mult=np.array([mult]), shift=np.array([shift]),
                           in_zp=q_in.zero_point, out_zp=q_out.zero_point, act_min=lo, act_max=hi, **base), q_out
    q_out = _range_params(*out_range)
    w = layer.weights.astype(np.float64)
    channel_axis_last = layer.kind == DEPTHWISE_CONV2D
    per_channel = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0) if channel_axis_last else \
        np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    w_scale = np.where(per_channel > 0, per_channel / 127.0, 1.0)
    shape = (1,) * (w.ndim - 1) + (-1,) if channel_axis_last else (-1,) + (1,) * (w.ndim - 1)
    wq = np.clip(np.round(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
    acc_scale = q_in.scale * w_scale
    bias = np.round(layer.bias.astype(np.float64) / acc_scale)
    if layer.kind == DENSE:
        # sum((x - zp) * w) + b == sum(x * w) + (b - zp * sum(w)): no padding, so exact
        bias = bias - q_in.zero_point * wq.astype(np.int64).reshape(len(wq), -1).sum(axis=1)
    if np.abs(bias).max() >= 2**31:
        raise ExportError("layer '%s': int8 bias out of the int32 range (the float bias is too large for the weights' scale)" % layer.name)
    bias = bias.astype(np.int32)
    taps = w[0].size if layer.kind != DEPTHWISE_CONV2D else layer.kernel[0] * layer.kernel[1]
    if int(np.abs(bias.astype(np.int64)).max()) + taps * 255 * 128 > MAX_ACC:
        raise ExportError("layer '%s': %d inputs per output could overflow the int8 path's int32 accumulator"
                          % (layer.name, taps))
    try:
        mults, shifts = zip(*(quantize_multiplier(s / q_out.scale) for s in acc_scale))
    except ExportError as e:
        raise ExportError("layer '%s': %s" % (layer.name, e)) from None
    lo, hi = _clamps(layer.activation, q_out)
    return StoredLayer(weights=wq, bias=bias, mult=np.array(mults, dtype=np.int64), shift=np.array(shifts, dtype=np.int64),
                       in_zp=q_in.zero_point, out_zp=q_out.zero_point, act_min=lo, act_max=hi, **base), q_out


def lower(net: Net, dtype: str = "float32", representative_data=None) -> StoredNet:
    """The StoredNet for the device: float32 as is, or int8 calibrated on representative_data (float rows)."""
    if dtype == "float32":
        return StoredNet("float32", net.input_shape, [_stored_float(layer) for layer in net.layers],
                         net.output_activation, source=net.source, classes=net.classes, feature_names=net.feature_names)
    if dtype != "int8":
        raise ExportError("quantize must be None (float32) or 'int8', got %r" % (dtype,))
    if representative_data is None:
        raise ExportError("quantize='int8' needs representative_data: a few hundred typical input rows")
    X = _as_input(representative_data, net.input_shape).astype(np.float32)
    trace: list = []
    net.predict(X, trace=trace)
    q = _range_params(X.min(), X.max())
    q_input = q
    layers = []
    for layer, out in zip(net.layers, trace):
        stored, q = _quantize_layer(layer, q, (out.min(), out.max()))
        layers.append(stored)
    return StoredNet("int8", net.input_shape, layers, net.output_activation, input_scale=q_input.scale,
                     input_zero_point=q_input.zero_point, output_scale=q.scale, output_zero_point=q.zero_point,
                     source=net.source, classes=net.classes, feature_names=net.feature_names)
