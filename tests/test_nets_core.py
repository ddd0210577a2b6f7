"""The portable network core (natmods/common/mpyml_nets.h, mpyml_math.h) built for the host.

tests/c/nets_driver.c is compiled with ASan and UBSan. The tests check that the
core computes bit for bit what StoredNet's numpy reference computes for int8
networks (and to float32 rounding for float32 ones) on every layer kind, that
its exp and reciprocal helpers equal their numpy mirrors bit for bit and are
accurate, that it rejects corrupt payloads with the right error code, and that
mutated payloads never make it crash.
"""

from __future__ import annotations

import os
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from c_errors import error_codes
from mpyml import nets
from mpyml.formats import nets as nets_format

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "natmods" / "common"
DRIVER_SOURCE = ROOT / "tests" / "c" / "nets_driver.c"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined,float-cast-overflow",
          "-fno-sanitize-recover=all",
          "-ffp-contract=off", "-g", "-I", str(COMMON)]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


CODE = error_codes()


def _compile(out_dir: Path, extra: list[str]) -> Path:
    exe = out_dir / "nets_driver"
    proc = subprocess.run(["gcc", *CFLAGS, *extra, "-o", str(exe), str(DRIVER_SOURCE)], capture_output=True, text=True)
    assert proc.returncode == 0, "gcc failed:\n" + proc.stdout + proc.stderr
    return exe


# O2-scalar: the kernels Cortex-M builds use, which x64 otherwise replaces with SSE2 ones.
@pytest.fixture(scope="module", params=["O0", "O2", "O2-scalar"])
def driver(request, tmp_path_factory) -> Path:
    flags = {"O0": [], "O2": ["-O2"], "O2-scalar": ["-O2", "-DMPYML_NO_SIMD"]}[request.param]
    return _compile(tmp_path_factory.mktemp("nets_" + request.param), flags)


def run(exe: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(exe), *args], input=data, capture_output=True, timeout=60, env=dict(os.environ, **SANITIZER_ENV))
    stderr = proc.stderr.decode(errors="replace")
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr[-4000:]
    assert proc.returncode != 2, "the driver could not read its input"
    return proc


def c_predict(exe, path, X, int8_input=False) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype="i1" if int8_input else "<f4").reshape(len(X), -1)
    proc = run(exe, X.tobytes(), "predict", str(path), str(len(X)), "b" if int8_input else "f")
    assert proc.returncode == 0, proc.stdout
    return np.frombuffer(proc.stdout, dtype="<f4").reshape(len(X), -1)


def c_error(exe, path) -> tuple[int, int]:
    proc = run(exe, b"", "predict", str(path), "0", "f")
    assert proc.returncode == 3, "payload accepted"
    _, code, layer = proc.stdout.decode().split()
    return int(code), int(layer)


# ---------------------------------------------------------------- math helpers


def test_expf_matches_mirror_and_numpy(driver):
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(-100, 100, 20001), rng.uniform(-88, 89, 20000), rng.normal(0, 3, 5000),
                        [0.0, -0.0, 1e-30, -1e-30, 87.999, -86.999, 88.0, -87.0, 0.5 * np.log(2), -0.5 * np.log(2)]]).astype(np.float32)
    out = np.frombuffer(run(driver, x.tobytes(), "exp").stdout, dtype="<f4")
    assert np.array_equal(out.view(np.uint32), nets.expf(x).view(np.uint32))
    clamped = np.clip(x.astype(np.float64), -87, 88)
    assert (np.abs(out / np.exp(clamped) - 1)).max() < 2e-7


def test_recipf_matches_mirror_and_is_accurate(driver):
    rng = np.random.default_rng(2)
    d = np.concatenate([np.geomspace(1e-30, 1e37, 20001), rng.uniform(1, 100, 5000), [1.0, 2.0, 3.0, 10.0]]).astype(np.float32)
    out = np.frombuffer(run(driver, d.tobytes(), "recip").stdout, dtype="<f4")
    assert np.array_equal(out.view(np.uint32), nets.recipf(d).view(np.uint32))
    assert np.abs(out.astype(np.float64) * d - 1).max() < 2e-7


# ---------------------------------------------------------------- parity on every layer kind


def _random_layer_weights(layer, rng):
    if layer.kind == nets.DENSE:
        layer.weights = rng.normal(0, 0.3, (layer.out_shape[2], int(np.prod(layer.in_shape)))).astype(np.float32)
    elif layer.kind == nets.CONV2D:
        layer.weights = rng.normal(0, 0.3, (layer.out_shape[2],) + tuple(layer.kernel) + (layer.in_shape[2],)).astype(np.float32)
    elif layer.kind == nets.DEPTHWISE_CONV2D:
        layer.weights = rng.normal(0, 0.5, tuple(layer.kernel) + (layer.in_shape[2],)).astype(np.float32)
    else:
        return layer
    layer.bias = rng.normal(0, 0.2, layer.out_shape[2]).astype(np.float32)
    return layer


def every_kind_net(rng, output_activation="softmax") -> nets.Net:
    """Conv2D same/valid with strides 1 and 2, depthwise, max pool (same), average pool, global average, dense."""
    layers, cur = [], (9, 10, 2)

    def add(kind, kernel, stride, padding, out_c, activation="linear"):
        nonlocal cur
        layer = nets.spatial_layer(kind, "l%d" % len(layers), cur, kernel, stride, padding, out_c, activation=activation)
        layers.append(_random_layer_weights(layer, rng))
        cur = layer.out_shape

    add(nets.CONV2D, (3, 3), (1, 1), "same", 6, "relu")
    add(nets.CONV2D, (3, 2), (2, 2), "same", 5, "relu6")
    add(nets.DEPTHWISE_CONV2D, (2, 3), (1, 2), "same", 5, "relu")
    add(nets.MAX_POOL, (2, 2), (2, 1), "same", 5)
    add(nets.CONV2D, (2, 2), (1, 1), "valid", 7)
    add(nets.AVG_POOL, (2, 1), (1, 1), "valid", 7, "relu")
    layers.append(nets.Layer(nets.AVG_POOL, "gap", cur, (1, 1, cur[2]), kernel=cur[:2]))
    layers.append(_random_layer_weights(nets.Layer(nets.DENSE, "dense", (1, 1, cur[2]), (1, 1, 4)), rng))
    return nets._checked(nets.Net((9, 10, 2), layers, output_activation, source="test"))


@pytest.mark.parametrize("output_activation", ["softmax", "sigmoid", "linear"])
def test_every_layer_kind_matches_numpy(driver, tmp_path, output_activation):
    rng = np.random.default_rng(3)
    net = every_kind_net(rng, output_activation)
    X = rng.normal(0.3, 1.0, (60, 9 * 10 * 2)).astype(np.float32)
    f32 = nets.lower(net)
    nets_format.save(f32, tmp_path / "f.bin")
    out = c_predict(driver, tmp_path / "f.bin", X)
    assert np.abs(out - f32.outputs(X)).max() < 1e-5
    assert np.abs(out - net.predict(X)).max() < 1e-5
    i8 = nets.lower(net, "int8", X[:40])
    nets_format.save(i8, tmp_path / "q.bin")
    out = c_predict(driver, tmp_path / "q.bin", X)
    assert np.array_equal(out.view(np.uint32), i8.outputs(X).view(np.uint32))
    codes = rng.integers(-128, 128, (20, 180)).astype(np.int8)
    out = c_predict(driver, tmp_path / "q.bin", codes, int8_input=True)
    assert np.array_equal(out.view(np.uint32), i8.outputs(codes, int8_input=True).view(np.uint32))


def wide_channel_net(rng) -> nets.Net:
    """Channel counts around multiples of 4 and 8: the core sums blocks of channels (x64: 8, scalar: 4), then the rest."""
    layers, cur = [], (7, 9, 3)

    def add(kind, kernel, stride, padding, out_c, activation="linear"):
        nonlocal cur
        layer = nets.spatial_layer(kind, "l%d" % len(layers), cur, kernel, stride, padding, out_c, activation=activation)
        layers.append(_random_layer_weights(layer, rng))
        cur = layer.out_shape

    add(nets.CONV2D, (3, 3), (1, 1), "same", 11, "relu")
    add(nets.DEPTHWISE_CONV2D, (3, 3), (2, 2), "same", 11, "relu6")
    add(nets.CONV2D, (1, 3), (1, 2), "same", 16)
    add(nets.DEPTHWISE_CONV2D, (2, 2), (1, 1), "valid", 16)
    add(nets.CONV2D, (2, 1), (1, 1), "valid", 8, "relu")
    layers.append(_random_layer_weights(nets.Layer(nets.DENSE, "dense", cur, (1, 1, 5)), rng))
    return nets._checked(nets.Net((7, 9, 3), layers, "linear", source="test"))


def test_channel_blocks_match_numpy(driver, tmp_path):
    rng = np.random.default_rng(8)
    net = wide_channel_net(rng)
    X = rng.normal(0.2, 1.0, (50, 7 * 9 * 3)).astype(np.float32)
    f32 = nets.lower(net)
    nets_format.save(f32, tmp_path / "f.bin")
    assert np.abs(c_predict(driver, tmp_path / "f.bin", X) - net.predict(X)).max() < 1e-5
    i8 = nets.lower(net, "int8", X[:30])
    nets_format.save(i8, tmp_path / "q.bin")
    assert np.array_equal(nets_format.load(tmp_path / "q.bin").outputs(X), i8.outputs(X))
    out = c_predict(driver, tmp_path / "q.bin", X)
    assert np.array_equal(out.view(np.uint32), i8.outputs(X).view(np.uint32))
    # Extreme codes: the largest |x - zero point| the layers can see, for the int16 products of the x64 kernels.
    codes = rng.choice(np.array([-128, 127, -127, 0], dtype=np.int8), (30, 7 * 9 * 3))
    out = c_predict(driver, tmp_path / "q.bin", codes, int8_input=True)
    assert np.array_equal(out.view(np.uint32), i8.outputs(codes, int8_input=True).view(np.uint32))


def test_non_finite_inputs_are_safe(driver, tmp_path):
    rng = np.random.default_rng(6)
    net = every_kind_net(rng)
    X = rng.normal(0, 1, (6, 180)).astype(np.float32)
    X[0, :] = np.nan
    X[1, ::3] = np.inf
    X[2, ::2] = -np.inf
    X[3, :] = 3e38
    X[4, 7] = np.nan
    i8 = nets.lower(net, "int8", X[5:])
    nets_format.save(i8, tmp_path / "q.bin")
    out = c_predict(driver, tmp_path / "q.bin", X)
    assert np.isfinite(out).all()  # int8 inputs saturate; NaN quantizes to the zero point
    assert np.array_equal(out, i8.outputs(X))
    nets_format.save(nets.lower(net), tmp_path / "f.bin")
    c_predict(driver, tmp_path / "f.bin", X)  # NaN propagates; the point is no crash or undefined behaviour


def test_mlp_parity(driver, tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((20,), max_iter=50, random_state=0).fit(X[:500], y[:500])
    for quantize in ("float32", "int8"):
        stored = nets.lower(nets.convert(mlp), quantize, X[:100])
        nets_format.save(stored, tmp_path / "m.bin")
        out = c_predict(driver, tmp_path / "m.bin", X[500:700])
        if quantize == "int8":
            assert np.array_equal(out, stored.outputs(X[500:700]))
        else:
            assert np.abs(out - mlp.predict_proba(X[500:700])).max() < 1e-5


# ---------------------------------------------------------------- validation

LAYER0 = nets_format.NET_HEADER.size


def labels_offset(payload: bytes) -> int:
    """Where the labels block starts: the end of the last parameter block."""
    return struct.unpack_from("<I", payload, nets_format.NET_HEADER.size - 8)[0]


def _file(payload: bytes) -> bytes:
    return nets_format.FILE_HEADER.pack(nets_format.MAGIC, nets_format.VERSION, 16, len(payload), zlib.crc32(payload)) + payload


@pytest.fixture(scope="module")
def small_int8_payload():
    rng = np.random.default_rng(4)
    net = every_kind_net(rng)
    return nets_format.payload(nets.lower(net, "int8", rng.normal(0, 1, (20, 180))))


CORRUPTIONS = [
    # (name, offset, struct format, value, error, layer or -1)
    ("dtype", 0, "<B", 3, "NET_DTYPE", -1),
    ("output activation", 1, "<B", 3, "NET_OUTPUT_ACTIVATION", -1),
    ("no layers", 2, "<H", 0, "NET_N_LAYERS", -1),
    ("input height 0", 4, "<H", 0, "NET_SHAPE", -1),
    ("n_outputs", 12, "<I", 5, "NET_HEADER", -1),
    ("arena_bytes", 16, "<I", 4, "NET_HEADER", -1),
    ("weights_bytes", 20, "<I", 0, "NET_HEADER", -1),
    ("input scale 0", 24, "<f", 0.0, "NET_QUANT", -1),
    ("input zero point", 28, "<i", 128, "NET_QUANT", -1),
    ("layer kind", LAYER0, "<B", 0, "NET_LAYER_KIND", 0),
    ("activation", LAYER0 + 1, "<B", 3, "NET_ACTIVATION", 0),
    ("stride 0", LAYER0 + 48 + 2, "<B", 0, "NET_SHAPE", 1),
    ("stride 3: windows outside the input", LAYER0 + 48 + 2, "<B", 3, "NET_SHAPE", 1),
    ("in channels", LAYER0 + 48 + 8, "<H", 1, "NET_SHAPE", 1),
    ("out width", LAYER0 + 12, "<H", 40, "NET_SHAPE", 0),
    ("padding >= kernel", LAYER0 + 18, "<B", 3, "NET_SHAPE", 0),
    ("in zero point", LAYER0 + 20, "<i", -129, "NET_QUANT", 0),
    ("clamp order", LAYER0 + 28, "<ii", (5, 4), "NET_QUANT", 0),
    ("params misaligned", LAYER0 + 36, "<I", 1000001, "NET_PARAMS", 0),
    ("params outside", LAYER0 + 36, "<I", 1 << 30, "NET_PARAMS", 0),
    ("params size", LAYER0 + 40, "<I", 4, "NET_PARAMS", 0),
]


@pytest.mark.parametrize("name,offset,fmt,value,error,layer", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_field_is_rejected(driver, tmp_path, small_int8_payload, name, offset, fmt, value, error, layer):
    payload = bytearray(small_int8_payload)
    struct.pack_into(fmt, payload, offset, *(value if isinstance(value, tuple) else (value,)))
    (tmp_path / "bad.bin").write_bytes(_file(bytes(payload)))
    assert c_error(driver, tmp_path / "bad.bin") == (CODE[error], layer)


def test_crc_truncation_and_int8_parameters_rejected(driver, tmp_path, small_int8_payload):
    data = bytearray(_file(small_int8_payload))
    data[-1] ^= 0x40
    (tmp_path / "crc.bin").write_bytes(bytes(data))
    assert c_error(driver, tmp_path / "crc.bin") == (CODE["NET_CRC"], -1)
    (tmp_path / "short.bin").write_bytes(_file(small_int8_payload[:100]))
    assert c_error(driver, tmp_path / "short.bin") == (CODE["NET_TRUNCATED"], -1)
    (tmp_path / "tiny.bin").write_bytes(_file(small_int8_payload[:20]))
    assert c_error(driver, tmp_path / "tiny.bin") == (CODE["NET_TRUNCATED"], -1)
    # layer 0's first shift (after bias and mult of its 6 channels) set to 0, then its bias to 2**31-1
    offset = struct.unpack_from("<I", small_int8_payload, LAYER0 + 36)[0]
    for where, value, error in ((offset + 12 * 6 - 24, 0, "NET_QUANT"), (offset + 12 * 6 - 24, 63, "NET_QUANT"),
                                (offset + 6 * 4, -1, "NET_QUANT"), (offset, 2**31 - 1, "NET_ACC_RANGE")):
        payload = bytearray(small_int8_payload)
        struct.pack_into("<i", payload, where, value)
        (tmp_path / "q.bin").write_bytes(_file(bytes(payload)))
        assert c_error(driver, tmp_path / "q.bin") == (CODE[error], 0)


def test_mutated_payloads_never_crash(driver, tmp_path, small_int8_payload):
    rng = np.random.default_rng(5)
    rows = rng.normal(0, 1, (2, 180)).astype(np.float32)
    accepted = 0
    for case in range(120):
        payload = bytearray(small_int8_payload)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, min(len(payload), LAYER0 + 48 * 8 + 64)))
            payload[pos] = int(rng.integers(0, 256))
        if case % 10 == 0:
            payload = payload[: int(rng.integers(0, len(payload)))]
        path = tmp_path / "m.bin"
        path.write_bytes(_file(bytes(payload)))
        proc = run(driver, rows.tobytes(), "predict", str(path), "2", "f")
        assert proc.returncode in (0, 3)
        accepted += proc.returncode == 0
    assert accepted < 120


def test_non_finite_parameters_rejected(driver, tmp_path, small_int8_payload):
    """NaN or infinite float32 weights, biases, average-pool reciprocals and int8 scales (CRC valid)."""
    rng = np.random.default_rng(6)
    payload = nets_format.payload(nets.lower(every_kind_net(rng)))
    offset = lambda layer: struct.unpack_from("<I", payload, LAYER0 + 48 * layer + 36)[0]  # noqa: E731
    for layer, where, value in ((0, offset(0), float("nan")), (1, offset(2) - 4, float("inf")),
                                (5, offset(5), float("-inf")), (7, labels_offset(payload) - 4, float("nan"))):
        bad = bytearray(payload)
        struct.pack_into("<f", bad, where, value)
        (tmp_path / "f.bin").write_bytes(_file(bytes(bad)))
        assert c_error(driver, tmp_path / "f.bin") == (CODE["NET_NOT_FINITE"], layer)
    for field in (24, 32, 36):  # input scale, its reciprocal, output scale
        bad = bytearray(small_int8_payload)
        struct.pack_into("<f", bad, field, float("inf") if field == 32 else float("nan"))
        (tmp_path / "q.bin").write_bytes(_file(bytes(bad)))
        assert c_error(driver, tmp_path / "q.bin") == (CODE["NET_NOT_FINITE"], -1)
