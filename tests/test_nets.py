"""emlcnn on the unix port with scikit-learn MLPs: parity, int8 bit-exactness, API, bad input.

Float32 outputs are compared with scikit-learn's predict_proba/predict, int8
outputs with StoredNet.outputs (the numpy reference of the device arithmetic),
bit for bit.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

import mpyml
from mpyml import build, device, nets
from mpyml.formats import nets as nets_format

PREDICT_SCRIPT = """
import array, emlcnn
net = emlcnn.new(emlcnn.arena_bytes({model!r}))
emlcnn.load_model(net, {model!r})
x = array.array({typecode!r}, bytes({row_bytes}))
out = array.array('f', bytes(4 * net.n_outputs))
with open({x_path!r}, 'rb') as f, open({out_path!r}, 'wb') as g:
    for _ in range({n_rows}):
        f.readinto(x)
        net.predict(x, out)
        g.write(out)
"""


@pytest.fixture(scope="session")
def emlcnn_x64():
    return build.build("emlcnn", "x64")


def device_predict(model_path, X, stored, typecode="f") -> np.ndarray:
    """Outputs of every row of X from emlcnn on the unix port, float32 (n, n_outputs)."""
    X = np.ascontiguousarray(X, dtype="<f4" if typecode == "f" else "i1").reshape(len(X), -1)
    tmp = Path(model_path).parent
    x_path, out_path = tmp / "x.bin", tmp / "out.bin"
    x_path.write_bytes(X.tobytes())
    device.run(PREDICT_SCRIPT.format(model=str(model_path), typecode=typecode, row_bytes=X.shape[1] * X.itemsize,
                                     x_path=str(x_path), out_path=str(out_path), n_rows=len(X)))
    return np.frombuffer(out_path.read_bytes(), dtype="<f4").reshape(len(X), stored.n_outputs)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def digits_mlp(digits):
    Xtr, Xte, ytr, yte = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=200, random_state=0).fit(Xtr, ytr)


def test_mlp_float32_matches_sklearn(emlcnn_x64, digits, digits_mlp, tmp_path):
    Xtr, Xte, ytr, yte = digits
    path = tmp_path / "mlp_f32.bin"
    stored = mpyml.export(digits_mlp, path)
    assert stored.dtype == "float32" and stored.n_inputs == 64 and stored.n_outputs == 10
    out = device_predict(path, Xte, stored)
    expected = digits_mlp.predict_proba(Xte)
    assert np.abs(out - expected).max() < 1e-4
    assert np.array_equal(out.argmax(axis=1), digits_mlp.predict(Xte))
    assert np.abs(out - stored.outputs(Xte)).max() < 1e-5  # float32 sums in another order


def test_mlp_int8_bit_identical_and_accurate(emlcnn_x64, digits, digits_mlp, tmp_path):
    Xtr, Xte, ytr, yte = digits
    path = tmp_path / "mlp_i8.bin"
    stored = mpyml.export(digits_mlp, path, quantize="int8", representative_data=Xtr[:200])
    out = device_predict(path, Xte, stored)
    assert np.array_equal(out.view(np.uint32), stored.outputs(Xte).view(np.uint32))
    float_accuracy = (digits_mlp.predict(Xte) == yte).mean()
    int8_accuracy = (out.argmax(axis=1) == yte).mean()
    assert int8_accuracy >= float_accuracy - 0.01, (int8_accuracy, float_accuracy)
    # int8 codes straight from array('b'): the same outputs as the device quantizing the floats itself
    codes = stored.quantize_input(Xte[:40])
    out_b = device_predict(path, codes, stored, typecode="b")
    assert np.array_equal(out_b.view(np.uint32), out[:40].view(np.uint32))
    assert np.array_equal(out_b.view(np.uint32), stored.outputs(codes, int8_input=True).view(np.uint32))


def test_int8_weights_smaller_than_float32(digits, digits_mlp):
    Xtr = digits[0]
    f32 = nets.lower(nets.convert(digits_mlp))
    i8 = nets.lower(nets.convert(digits_mlp), "int8", Xtr[:100])
    n_weights = sum(c.size for c in digits_mlp.coefs_)
    n_bias = sum(b.size for b in digits_mlp.intercepts_)
    assert f32.weights_bytes == 4 * (n_weights + n_bias)
    assert i8.weights_bytes < f32.weights_bytes / 3
    assert f32.arena_bytes == 2 * 4 * 64 and i8.arena_bytes == 2 * 64
    assert "weights %d B" % i8.weights_bytes in i8.summary() and "arena %d B" % i8.arena_bytes in i8.summary()


def test_mlp_regressor_and_binary_classifier(emlcnn_x64, tmp_path):
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y / 100)
        binary = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, y > 140)
    stored = mpyml.export(reg, tmp_path / "reg.bin")
    out = device_predict(tmp_path / "reg.bin", X[:50], stored)
    assert np.abs(out[:, 0] - reg.predict(X[:50])).max() < 1e-4
    stored = mpyml.export(binary, tmp_path / "bin.bin")
    assert stored.output_activation == "sigmoid" and stored.n_outputs == 1
    out = device_predict(tmp_path / "bin.bin", X[:50], stored)
    assert np.abs(out[:, 0] - binary.predict_proba(X[:50])[:, 1]).max() < 1e-4
    stored = mpyml.export(binary, tmp_path / "bin8.bin", quantize="int8", representative_data=X)
    out = device_predict(tmp_path / "bin8.bin", X[:50], stored)
    assert np.array_equal(out, stored.outputs(X[:50]))


def test_file_round_trip(digits, digits_mlp, tmp_path):
    Xtr, Xte = digits[0], digits[1]
    for quantize in (None, "int8"):
        stored = mpyml.export(digits_mlp, tmp_path / "m.bin", quantize=quantize, representative_data=Xtr[:100])
        data = (tmp_path / "m.bin").read_bytes()
        labels = nets_format.labels_block(stored.classes, stored.feature_names)
        assert data[:4] == b"MPYN" and len(data) == 16 + 52 + 48 * len(stored.layers) + stored.weights_bytes + len(labels)
        assert data.endswith(labels)
        again = nets_format.load(tmp_path / "m.bin")
        assert again.classes == list(digits_mlp.classes_) and again.feature_names is None
        assert np.array_equal(again.outputs(Xte), stored.outputs(Xte))
        assert np.array_equal(again.predict_index(Xte), np.argmax(stored.outputs(Xte), axis=1))
        if quantize is None:
            np.testing.assert_array_equal(again.predict(Xte), digits_mlp.predict(Xte))


# ---------------------------------------------------------------- device API

API_SCRIPT = """
import array, emlcnn, gc
net = emlcnn.new({arena})
print(net.loaded, net.n_inputs, net.arena_bytes)
with open({model!r}, 'rb') as f:
    emlcnn.load_model(net, f)
print(net.loaded, net.dtype, net.n_inputs, net.n_outputs, net.n_layers, net.arena_needed, net.weights_bytes)
print(emlcnn.arena_bytes({model!r}))
x = array.array('f', [0.5] * 64)
xb = array.array('b', [3] * 64)
out = array.array('f', [0.0] * 10)
net.predict(x, out)
def allocated(n):
    gc.collect()
    before = gc.mem_alloc()
    i = 0
    while i < n:  # a for loop's range iterator would allocate
        net.predict(x, out)
        net.predict(xb, out)
        i += 1
    return gc.mem_alloc() - before
allocated(1)
print('alloc', allocated(100))
print(net.input_scale > 0, -128 <= net.input_zero_point <= 127)
net.unload()
print(net.loaded)
try:
    net.predict(x, out)
except RuntimeError as e:
    print('RuntimeError', e)
"""


def test_device_api_and_no_allocation(emlcnn_x64, digits, digits_mlp, tmp_path):
    path = tmp_path / "m.bin"
    stored = mpyml.export(digits_mlp, path, quantize="int8", representative_data=digits[0][:100])
    out = device.run(API_SCRIPT.format(arena=stored.arena_bytes, model=str(path))).splitlines()
    assert out[0] == "False None %d" % stored.arena_bytes
    assert out[1] == "True int8 64 10 3 %d %d" % (stored.arena_bytes, stored.weights_bytes)
    assert out[2] == str(stored.arena_bytes)
    assert out[3] == "alloc 0"
    assert out[4] == "True True"
    assert out[5] == "False"
    assert out[6].startswith("RuntimeError no model loaded")


# ---------------------------------------------------------------- bad input

BAD_SCRIPT = """
import array, emlcnn, io
def attempt(what, fn):
    try:
        fn()
        print(what, 'OK')
    except Exception as e:
        print(what, type(e).__name__, e)
net = emlcnn.new({arena})
for name in {names!r}:
    attempt(name, lambda: emlcnn.load_model(net, {tmp!r} + '/' + name))
    print(name, 'loaded', net.loaded)
emlcnn.load_model(net, {tmp!r} + '/good.bin')
out = array.array('f', [0.0] * 10)
attempt('short_x', lambda: net.predict(array.array('f', [0.0] * 63), out))
attempt('int_x', lambda: net.predict(array.array('h', [0] * 64), out))
attempt('list_x', lambda: net.predict([0.0] * 64, out))
attempt('short_out', lambda: net.predict(array.array('f', [0.0] * 64), array.array('f', [0.0] * 9)))
attempt('int_out', lambda: net.predict(array.array('f', [0.0] * 64), array.array('i', [0] * 10)))
attempt('text_mode', lambda: emlcnn.load_model(net, open({tmp!r} + '/good.bin')))
attempt('not_net', lambda: emlcnn.load_model(object(), {tmp!r} + '/good.bin'))
attempt('negative_arena', lambda: emlcnn.new(-1))
small = emlcnn.new({small})
attempt('small_arena', lambda: emlcnn.load_model(small, {tmp!r} + '/good.bin'))
fnet = emlcnn.new(emlcnn.arena_bytes({tmp!r} + '/float.bin'))
emlcnn.load_model(fnet, {tmp!r} + '/float.bin')
attempt('b_into_float', lambda: fnet.predict(array.array('b', [0] * 64), out))
with open({tmp!r} + '/huge_payload.bin', 'rb') as f:
    data = f.read()
attempt('huge_payload_bytesio', lambda: emlcnn.load_model(net, io.BytesIO(data)))
"""


def _with_payload(data: bytes, payload: bytes, fix_crc=True) -> bytes:
    header = bytearray(data[:16])
    struct.pack_into("<I", header, 8, len(payload))
    if fix_crc:
        struct.pack_into("<I", header, 12, zlib.crc32(payload))
    return bytes(header) + payload


def test_bad_input_raises_clear_errors(emlcnn_x64, digits, digits_mlp, tmp_path):
    stored = mpyml.export(digits_mlp, tmp_path / "good.bin", quantize="int8", representative_data=digits[0][:100])
    mpyml.export(digits_mlp, tmp_path / "float.bin")
    good = (tmp_path / "good.bin").read_bytes()
    payload = bytearray(good[16:])
    bad_layer = bytearray(payload)
    net_header = nets_format.NET_HEADER.size
    bad_layer[net_header + 48] = 9  # layer 1 kind
    bad_shape = bytearray(payload)
    struct.pack_into("<H", bad_shape, net_header + 48 + 4 + 4, 31)  # layer 1 in_c
    float_file = (tmp_path / "float.bin").read_bytes()
    float_payload = float_file[16:]
    layer1_params = struct.unpack_from("<I", float_payload, net_header + 48 + 36)[0]
    float_labels = struct.unpack_from("<I", float_payload, net_header - 8)[0]
    nan_weight, inf_bias, nan_scale = bytearray(float_payload), bytearray(float_payload), bytearray(payload)
    struct.pack_into("<f", nan_weight, layer1_params + 4 * 5, float("nan"))
    struct.pack_into("<f", inf_bias, float_labels - 4, float("-inf"))  # the last layer's last bias
    labels = struct.unpack_from("<I", payload, net_header - 8)[0]  # the labels block (classes 0..9: int)
    bad_utf8, bad_int, bad_count, bad_place = bytearray(payload), bytearray(payload), bytearray(payload), bytearray(payload)
    bad_utf8[labels] = 2  # the labels become strs; their text stays, so make one invalid UTF-8:
    bad_utf8[labels + 12 + 2] = 0xFF
    bad_int[labels + 12 + 2] = ord("x")  # class 0's text "0" -> "x"
    struct.pack_into("<I", bad_count, labels + 4, 9)  # 9 classes for 10 outputs
    struct.pack_into("<I", bad_place, net_header - 4, len(payload) - labels + 4)  # past the payload
    struct.pack_into("<f", nan_scale, 36, float("nan"))  # output scale
    huge = bytearray(good[:16])
    struct.pack_into("<I", huge, 8, 0x7FFFFFF0)
    cases = {
        "truncated_header.bin": good[:10],
        "truncated.bin": good[:-100],
        "empty.bin": b"",
        "magic.bin": b"NOPE" + good[4:],
        "version.bin": good[:4] + struct.pack("<H", 3) + good[6:],
        "version1.bin": good[:4] + struct.pack("<H", 1) + good[6:],
        "labels_utf8.bin": _with_payload(good, bytes(bad_utf8)),
        "labels_int.bin": _with_payload(good, bytes(bad_int)),
        "labels_count.bin": _with_payload(good, bytes(bad_count)),
        "labels_place.bin": _with_payload(good, bytes(bad_place)),
        "labels_cut.bin": _with_payload(good, bytes(payload[:-1])),
        "crc.bin": good[:-1] + bytes([good[-1] ^ 1]),
        "layer_kind.bin": _with_payload(good, bytes(bad_layer)),
        "layer_shape.bin": _with_payload(good, bytes(bad_shape)),
        "nan_weight.bin": _with_payload(float_file, bytes(nan_weight)),
        "inf_bias.bin": _with_payload(float_file, bytes(inf_bias)),
        "nan_scale.bin": _with_payload(good, bytes(nan_scale)),
        "huge_payload.bin": bytes(huge) + good[16:],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    out = device.run(BAD_SCRIPT.format(arena=stored.arena_bytes, small=stored.arena_bytes - 10, names=list(cases),
                                       tmp=str(tmp_path)))
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " loaded " not in line)
    assert all(line.endswith("loaded False") for line in out.splitlines() if " loaded " in line)
    assert lines["truncated_header.bin"] == "ValueError model file: file truncated: the header needs 16 bytes, got 10"
    assert lines["truncated.bin"] == "ValueError model file: file says %d bytes, the file has %d" % (len(good), len(good) - 100)
    assert lines["empty.bin"] == "ValueError model file: file truncated: the header needs 16 bytes, got 0"
    assert lines["magic.bin"] == "ValueError model file: bad magic b'NOPE': not an mpyml-nets model file (expected b'MPYN')"
    assert lines["version.bin"] == "ValueError model file: format version 3 is not supported (this emlcnn reads version 2)"
    assert lines["version1.bin"] == ("ValueError model file: version 1 is no longer read by this emlcnn (it reads "
                                     "version 2): export the model again")
    assert lines["labels_utf8.bin"] == "ValueError model file: labels block: a label is not valid UTF-8"
    assert lines["labels_int.bin"] == ("ValueError model file: labels block: int label: expected a decimal integer, "
                                       "got 'x'")
    assert lines["labels_count.bin"] == "ValueError model file: labels block: 9 classes for 10 outputs"
    assert lines["labels_place.bin"] == lines["labels_cut.bin"] == (
        "ValueError model file: labels block: misplaced (it must end the payload, after the layer table)")
    assert lines["crc.bin"].startswith("ValueError model file: CRC32 of the payload does not match")
    assert lines["layer_kind.bin"] == "ValueError model file: layer 1: unknown layer kind"
    assert lines["layer_shape.bin"].startswith("ValueError model file: layer 1: shape does not follow")
    assert lines["nan_weight.bin"] == "ValueError model file: layer 1: a weight, bias or scale is NaN or infinite"
    assert lines["inf_bias.bin"] == "ValueError model file: layer 2: a weight, bias or scale is NaN or infinite"
    assert lines["nan_scale.bin"] == "ValueError model file: a weight, bias or scale is NaN or infinite"
    # checked against the file's size before the payload is allocated (2 GB would be a MemoryError)
    huge = "ValueError model file: file says %d bytes, the file has %d" % (16 + 0x7FFFFFF0, len(good))
    assert lines["huge_payload.bin"] == huge and lines["huge_payload_bytesio"] == huge
    # the host reader refuses the same files with the same reasons
    for name in ("truncated.bin", "nan_weight.bin", "inf_bias.bin", "nan_scale.bin", "huge_payload.bin", "version.bin",
                 "version1.bin", "labels_utf8.bin", "labels_int.bin", "labels_count.bin", "labels_place.bin",
                 "labels_cut.bin"):
        with pytest.raises(ValueError) as e:
            nets_format.load(tmp_path / name)
        assert "ValueError model file: " + str(e.value) == lines[name]
    assert lines["short_x"] == "ValueError x: expected 64 values, got 63"
    assert lines["int_x"] == "TypeError x: expected array('f'), got typecode 'h'"
    assert lines["list_x"] == "TypeError x: expected array('f'), got list"
    assert lines["short_out"] == "ValueError out: expected 10 values, got 9"
    assert lines["int_out"] == "TypeError out: expected array('f'), got typecode 'i'"
    assert lines["text_mode"] == "ValueError model file: open the model file in binary mode ('rb')"
    assert lines["not_net"].startswith("TypeError load_model: expected a network from emlcnn.new()")
    assert lines["negative_arena"].startswith("ValueError emlcnn.new: arena_bytes must be")
    short = stored.arena_bytes - ((stored.arena_bytes - 10 + 3) & ~3)
    assert lines["small_arena"] == ("ValueError model file: arena too small: the model needs %d bytes, emlcnn.new() was "
                                    "given %d (%d short)" % (stored.arena_bytes, stored.arena_bytes - short, short))
    assert lines["b_into_float"].startswith("TypeError x: expected array('f'), got typecode 'b'")


def test_exporter_refuses_what_it_cannot_run(digits):
    Xtr, _, ytr, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tanh = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", max_iter=5).fit(Xtr[:100], ytr[:100])
    with pytest.raises(mpyml.ExportError, match="hidden activation 'tanh' is not supported"):
        mpyml.export(tanh, "/nonexistent/x.bin")
    relu = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        relu.fit(Xtr[:100], ytr[:100])
    with pytest.raises(mpyml.ExportError, match="needs representative_data"):
        mpyml.export(relu, "/nonexistent/x.bin", quantize="int8")
    with pytest.raises(mpyml.ExportError, match="quantize must be None"):
        mpyml.export(relu, "/nonexistent/x.bin", quantize="int4", representative_data=Xtr)
    # multilabel (a 2-D y): one sigmoid per label, which net.classes cannot name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        multilabel = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(
            Xtr[:100], np.c_[ytr[:100] > 4, ytr[:100] % 2 == 0])
    with pytest.raises(mpyml.ExportError, match=r"multilabel classifiers \(y with 2 columns\) are not supported"):
        mpyml.export(multilabel, "/nonexistent/x.bin")


def test_requantize_multiplier_is_close():
    for m in (1e-9, 3.7e-5, 0.0123, 0.5, 0.99999, 1.5, 1234.5):
        mult, shift = nets.quantize_multiplier(m)
        assert 0 <= mult < 2**31 and 1 <= shift <= 62
        assert abs(mult * 2.0**-shift - m) <= m * 2**-30 + 2.0**-62
    acc = np.array([-1000, -3, -1, 0, 1, 2, 3, 1000])
    mult, shift = nets.quantize_multiplier(0.5)
    # halves round up: -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2
    assert list(nets.requantize(acc, mult, shift, 0, -128, 127)) == [-128, -1, 0, 0, 1, 1, 2, 127]


@pytest.mark.parametrize("arch", ["armv6m", "armv7m", "armv7emsp"])
def test_cortex_m_builds(arch):
    import shutil

    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not installed")
    mpy = build.build("emlcnn", arch)
    assert mpy.stat().st_size > 5000
    if arch == "armv6m":
        # no FPU and no divide instruction: soft-float add/multiply/compare only, never float division
        libgcc = {p.name for p in (build.BUILD_DIR / arch / "emlcnn" / "libgcc").glob("*.o")}
        assert "mulsf3.o" in libgcc and "divsf3.o" not in libgcc


def test_arena_larger_than_the_heap(emlcnn_x64):
    """An arena the heap cannot hold raises MemoryError; the interpreter goes on."""
    out = device.run("""
import emlcnn
try:
    emlcnn.new(1 << 30)
except MemoryError as e:
    print('MemoryError', e)
print(emlcnn.new(64).arena_bytes)
""").splitlines()
    assert out[0] == "MemoryError not enough memory for the arena: 1073741824 bytes needed"
    assert out[1] == "64"


# ---------------------------------------------------------------- class labels and feature names

LABEL_SETS = {
    "str": np.array(["cat", "dog, big", "é%#\n"]),
    "int": np.array([-7, 3, 10**12]),
    "bool": np.array([False, True]),
    "float": np.array([-2.0, 1.0, 3.0]),  # scikit-learn takes integral floats only
}


@pytest.mark.parametrize("kind", sorted(LABEL_SETS))
def test_labels_round_trip_on_the_device(emlcnn_x64, tmp_path, kind):
    """net.classes == list(classes_) on the unix port; the host mirror's predict gives scikit-learn's labels."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    labels = LABEL_SETS[kind]
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    y = labels[np.arange(90) % len(labels)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(6,), max_iter=200, random_state=0).fit(X, y)
    path = tmp_path / "m.bin"
    stored = mpyml.export(mlp, path)
    again = nets_format.load(path)
    assert again.classes == list(mlp.classes_) and again.feature_names == ["a", "b", "c"]
    np.testing.assert_array_equal(again.predict(X), mlp.predict(X))
    assert again.predict(X).dtype == mlp.predict(X).dtype
    with pytest.raises(ValueError, match="another order"):
        again.predict(X[["c", "b", "a"]])
    np.testing.assert_array_equal(again.predict(X.to_numpy()), mlp.predict(X))  # arrays have no names to check
    out = device.run("import emlcnn\nnet = emlcnn.new(emlcnn.arena_bytes(%r))\nemlcnn.load_model(net, %r)\n"
                     "print(net.classes == %r, net.feature_names == ['a', 'b', 'c'])\nnet.unload()\n"
                     "print(net.classes, net.feature_names)" % (str(path), str(path), mlp.classes_.tolist()))
    assert out.split() == ["True", "True", "None", "None"]
    assert device_predict(path, X.to_numpy()[:20], stored).shape == (20, stored.n_outputs)


def test_nets_without_labels(emlcnn_x64, tmp_path):
    """A regressor's file has an empty labels block: net.classes is None, predict returns the outputs."""
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, y / 100)
    stored = mpyml.export(reg, tmp_path / "r.bin")
    again = nets_format.load(tmp_path / "r.bin")
    assert again.classes is None and np.array_equal(again.predict(X[:5]), again.outputs(X[:5]))
    out = device.run("import emlcnn\nnet = emlcnn.new(%d)\nemlcnn.load_model(net, %r)\nprint(net.classes)"
                     % (stored.arena_bytes, str(tmp_path / "r.bin")))
    assert out.strip() == "None"
