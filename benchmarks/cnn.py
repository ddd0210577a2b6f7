"""Benchmark: emlcnn (float32 and int8) against a plain-MicroPython implementation of the same network.

One run on the unix port of MicroPython, sklearn's digits (8x8 images scaled to
0..1, train_test_split(random_state=0)). Two networks:

  mlp   MLPClassifier(hidden_layer_sizes=(32, 16), random_state=0): dense 64-32-16-10, softmax
  cnn   Keras 3 Sequential: Conv2D(8, 3, same) + BatchNormalization + ReLU, DepthwiseConv2D(3,
        stride 2, same, relu6), MaxPooling2D(2, same), Conv2D(16, 2, valid, relu), Flatten,
        Dense(10, softmax); trained 12 epochs. Without keras, the same architecture with seeded
        random weights (reported as such): the timings do not depend on the weights.

Contenders, each in its own micropython process: emlcnn float32 and emlcnn int8
(`net.predict(x, out)` with array('f') rows), and plain MicroPython: the float32
network as flat lists of floats, evaluated by straightforward loops (the same
layer semantics as emlcnn). Reported: µs per inference (median of the timed
passes over the rows in 5 rounds that interleave the contenders, time.ticks_us on
the device), speed-ups, accuracy on the
rows, weights bytes (flash), arena bytes (RAM) and model file bytes.

    python benchmarks/cnn.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exporter"))

from mpyml import build, device, nets  # noqa: E402
from mpyml.formats import nets as nets_format  # noqa: E402

TARGETS = [("float32_vs_plain", "emlcnn float32 >= 200x faster than plain MicroPython", 200.0),
           ("int8_vs_plain_over_float32", "emlcnn int8 faster than emlcnn float32", 1.0)]

# The plain-MicroPython contender: the float32 network as lists, one function per layer kind.
PLAIN_NET = """
def _act(v, a):
    if a and v < 0.0:
        v = 0.0
    if a == 2 and v > 6.0:
        v = 6.0
    return v

def dense(x, L):
    w, b, n_in, a = L['w'], L['b'], len(x), L['act']
    y = []
    for o in range(len(b)):
        acc = b[o]
        base = o * n_in
        for i in range(n_in):
            acc += x[i] * w[base + i]
        y.append(_act(acc, a))
    return y

def spatial(x, L):
    kind, a = L['kind'], L['act']
    in_h, in_w, in_c = L['in']
    out_h, out_w, out_c = L['out']
    kh, kw = L['kernel']
    sh, sw = L['stride']
    pt, pl = L['pad']
    w, b = L['w'], L['b']
    y = [0.0] * (out_h * out_w * out_c)
    for oy in range(out_h):
        iy0 = oy * sh - pt
        for ox in range(out_w):
            ix0 = ox * sw - pl
            for oc in range(out_c):
                acc = None if kind == 'max' else (b[oc] if kind in ('conv', 'dw') else 0.0)
                for ky in range(kh):
                    iy = iy0 + ky
                    if iy < 0 or iy >= in_h:
                        continue
                    for kx in range(kw):
                        ix = ix0 + kx
                        if ix < 0 or ix >= in_w:
                            continue
                        base = (iy * in_w + ix) * in_c
                        if kind == 'conv':
                            wb = ((oc * kh + ky) * kw + kx) * in_c
                            for ci in range(in_c):
                                acc += x[base + ci] * w[wb + ci]
                        elif kind == 'dw':
                            acc += x[base + oc] * w[(ky * kw + kx) * in_c + oc]
                        elif kind == 'max':
                            v = x[base + oc]
                            if acc is None or v > acc:
                                acc = v
                        else:
                            acc += x[base + oc]
                if kind == 'avg':
                    acc *= b[0]
                y[(oy * out_w + ox) * out_c + oc] = _act(acc, a)
    return y

def softmax(y):
    m = max(y)
    e = [math.exp(v - m) for v in y]
    s = sum(e)
    return [v / s for v in e]

def predict(x):
    for L in LAYERS:
        x = dense(x, L) if L['kind'] == 'dense' else spatial(x, L)
    return softmax(x) if SOFTMAX else x
"""

_KIND = {nets.DENSE: "dense", nets.CONV2D: "conv", nets.DEPTHWISE_CONV2D: "dw", nets.MAX_POOL: "max", nets.AVG_POOL: "avg"}

SCRIPT = """
import array, gc, json, time
N_INPUTS, N_OUTPUTS, N_ROWS, REPS = {n_inputs}, {n_outputs}, {n_rows}, {reps}
rows = []
with open({x_path!r}, 'rb') as f:
    for _ in range(N_ROWS):
        x = array.array('f', bytes(4 * N_INPUTS))
        f.readinto(x)
        rows.append(x)
CONTENDER = {contender!r}
if CONTENDER == 'plain':
    import math
    import plain_net
    rows = [list(x) for x in rows]
    def run(x, out):
        return plain_net.predict(x)
    first = [plain_net.predict(x) for x in rows]
else:
    import emlcnn
    net = emlcnn.new(emlcnn.arena_bytes({model!r}))
    emlcnn.load_model(net, {model!r})
    run = net.predict
    first = []
    for x in rows:
        o = array.array('f', bytes(4 * N_OUTPUTS))
        net.predict(x, o)
        first.append(list(o))
out = array.array('f', bytes(4 * N_OUTPUTS))
times = []
for _ in range(REPS):
    gc.collect()
    t0 = time.ticks_us()
    for x in rows:
        run(x, out)
    times.append(time.ticks_diff(time.ticks_us(), t0))
print(json.dumps({{'times_us': times, 'outputs': first}}))
"""


def plain_module(stored: nets.StoredNet) -> str:
    layers = []
    for layer in stored.layers:
        entry = {"kind": _KIND[layer.kind], "act": nets.ACTIVATIONS[layer.activation], "in": list(layer.in_shape),
                 "out": list(layer.out_shape), "kernel": list(layer.kernel), "stride": list(layer.stride),
                 "pad": list(layer.padding),
                 "w": [float(v) for v in np.ravel(layer.weights)] if layer.weights is not None else [],
                 "b": [float(v) for v in np.ravel(layer.bias)] if layer.bias is not None else []}
        layers.append(entry)
    return "import math\nSOFTMAX = %r\nLAYERS = %r\n%s" % (stored.output_activation == "softmax", layers, PLAIN_NET)


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16.0).astype(np.float32), y, test_size=0.25, random_state=0)


def mlp_net(Xtr, ytr):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=200, random_state=0).fit(Xtr, ytr)
    return nets.convert(mlp), "MLPClassifier (32, 16)"


def cnn_net(Xtr, ytr):
    """The digits CNN from Keras when it is installed, else the same layers with seeded random weights."""
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras
    except ImportError:
        return _random_cnn(), "CNN, random weights (keras not installed)"
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 1)), layers.Conv2D(8, 3, padding="same", use_bias=False), layers.BatchNormalization(),
        layers.ReLU(), layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6"),
        layers.MaxPooling2D(2, padding="same"), layers.Conv2D(16, 2, padding="valid", activation="relu"),
        layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xtr.reshape(-1, 8, 8, 1), ytr, epochs=12, batch_size=32, verbose=0)
    return nets.convert(model), "Keras CNN (conv-dw-maxpool-conv-dense)"


def _random_cnn():
    rng = np.random.default_rng(0)
    specs = [(nets.CONV2D, (3, 3), (1, 1), "same", 8, "relu"), (nets.DEPTHWISE_CONV2D, (3, 3), (2, 2), "same", 8, "relu6"),
             (nets.MAX_POOL, (2, 2), (2, 2), "same", 8, "linear"), (nets.CONV2D, (2, 2), (1, 1), "valid", 16, "relu")]
    layers, cur = [], (8, 8, 1)
    for kind, kernel, stride, padding, out_c, act in specs:
        layer = nets.spatial_layer(kind, "l%d" % len(layers), cur, kernel, stride, padding, out_c, activation=act)
        if kind == nets.CONV2D:
            layer.weights = rng.normal(0, 0.4, (out_c,) + kernel + (cur[2],)).astype(np.float32)
        elif kind == nets.DEPTHWISE_CONV2D:
            layer.weights = rng.normal(0, 0.4, kernel + (cur[2],)).astype(np.float32)
        if layer.weights is not None:
            layer.bias = rng.normal(0, 0.1, out_c).astype(np.float32)
        layers.append(layer)
        cur = layer.out_shape
    layers.append(nets.Layer(nets.DENSE, "dense", cur, (1, 1, 10), weights=rng.normal(0, 0.3, (10, 16)).astype(np.float32),
                             bias=np.zeros(10, np.float32)))
    return nets.Net((8, 8, 1), layers, "softmax", source="random")


def run_contender(contender, model_path, X, n_outputs, reps, tmp: Path) -> dict:
    x_path = tmp / "x.bin"
    x_path.write_bytes(np.ascontiguousarray(X, dtype="<f4").tobytes())
    out = device.run(SCRIPT.format(n_inputs=X.shape[1], n_outputs=n_outputs, n_rows=len(X), reps=reps,
                                   x_path=str(x_path), contender=contender, model=str(model_path)), extra_path=[tmp])
    result = json.loads(out.strip().splitlines()[-1])
    times = sorted(result["times_us"])
    result["us_per_inference"] = times[len(times) // 2] / len(X)
    result["outputs"] = np.array(result["outputs"], dtype=np.float64)
    return result


def bench_network(name, net, Xtr, Xte, yte, n_rows, n_plain, reps, rounds, tmp: Path) -> dict:
    f32 = nets.lower(net)
    i8 = nets.lower(net, "int8", Xtr[:200])
    paths = {"float32": tmp / (name + "_f32.bin"), "int8": tmp / (name + "_i8.bin")}
    sizes = {"float32": nets_format.save(f32, paths["float32"]), "int8": nets_format.save(i8, paths["int8"])}
    (tmp / "plain_net.py").write_text(plain_module(f32))
    X, y = Xte[:n_rows].reshape(n_rows, -1), yte[:n_rows]
    res = {}
    # Rounds interleave the contenders, so a burst of background load lands on all of them.
    for _ in range(rounds):
        for contender, path, rows in (("plain", None, n_plain), ("float32", paths["float32"], n_rows), ("int8", paths["int8"], n_rows)):
            r = run_contender(contender if contender == "plain" else "emlcnn", path, X[:rows], f32.n_outputs, reps, tmp)
            if contender in res:
                res[contender]["times_us"] += r["times_us"]
                times = sorted(res[contender]["times_us"])
                res[contender]["us_per_inference"] = times[len(times) // 2] / rows
            else:
                r["accuracy"] = float((r["outputs"].argmax(axis=1) == y[:rows]).mean())
                res[contender] = r
    ref_f32 = f32.outputs(X)
    report = {
        "rows": n_rows, "plain_rows": n_plain,
        "us": {k: v["us_per_inference"] for k, v in res.items()},
        "accuracy": {k: v["accuracy"] for k, v in res.items()},
        "weights_bytes": {"float32": f32.weights_bytes, "int8": i8.weights_bytes},
        "arena_bytes": {"float32": f32.arena_bytes, "int8": i8.arena_bytes},
        "file_bytes": sizes,
        "float32_max_diff_vs_numpy": float(np.abs(res["float32"]["outputs"] - ref_f32).max()),
        "plain_max_diff_vs_emlcnn": float(np.abs(res["plain"]["outputs"] - res["float32"]["outputs"][:n_plain]).max()),
        "int8_bit_identical": bool(np.array_equal(res["int8"]["outputs"].astype(np.float32), i8.outputs(X))),
    }
    report["ratios"] = {"float32_vs_plain": report["us"]["plain"] / report["us"]["float32"],
                        "int8_vs_plain": report["us"]["plain"] / report["us"]["int8"],
                        "int8_vs_plain_over_float32": report["us"]["float32"] / report["us"]["int8"]}
    return report


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rows and passes (a smoke run)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    n_rows, n_plain, reps, rounds = (40, 5, 2, 1) if args.quick else (450, 60, 9, 5)
    build.build("emlcnn", "x64")
    Xtr, Xte, ytr, yte = digits()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (net, what) in (("mlp", mlp_net(Xtr, ytr)), ("cnn", cnn_net(Xtr, ytr))):
            r = bench_network(name, net, Xtr, Xte, yte, n_rows, n_plain, reps, rounds, Path(tmp))
            r["network"] = what
            results[name] = r
    print("emlcnn benchmark on the unix port (x64), digits 8x8, %d test rows (plain MicroPython: %d), median of %d passes "
          "(%d rounds, contenders interleaved)" % (n_rows, n_plain, reps * rounds, rounds))
    print()
    print("| network | contender | µs / inference | speed-up vs plain | accuracy | weights (B) | arena (B) | file (B) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for c in ("plain", "float32", "int8"):
            dtype = "float32" if c == "plain" else c
            label = {"plain": "plain MicroPython (float)", "float32": "emlcnn float32", "int8": "emlcnn int8"}[c]
            speed = "—" if c == "plain" else "%.0fx" % (r["us"]["plain"] / r["us"][c])
            rows = r["plain_rows"] if c == "plain" else r["rows"]
            print("| %s | %s | %.1f | %s | %d/%d | %s | %s | %s |" % (
                r["network"], label, r["us"][c], speed, round(r["accuracy"][c] * rows), rows,
                r["weights_bytes"][dtype] if c != "plain" else "(lists)", r["arena_bytes"][dtype] if c != "plain" else "—",
                r["file_bytes"][dtype] if c != "plain" else "—"))
    print()
    print("Checks: " + "; ".join("%s: float32 vs numpy max |diff| %.1e, plain vs emlcnn %.1e, int8 bit-identical to numpy: %s"
                                 % (n, r["float32_max_diff_vs_numpy"], r["plain_max_diff_vs_emlcnn"], r["int8_bit_identical"])
                                 for n, r in results.items()))
    targets = []
    for name, r in results.items():
        for key, text, threshold in TARGETS:
            value = r["ratios"][key]
            targets.append({"network": name, "target": text, "value": value, "met": bool(value >= threshold)})
    print("Targets: " + "; ".join("%s %s: %.1fx %s" % (t["network"], t["target"], t["value"], "met" if t["met"] else "NOT met")
                                  for t in targets))
    report = {"networks": results, "targets": targets, "quick": args.quick, "passes": reps * rounds}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
