"""Seeded fuzzing of every model-file loader (tests/fuzzing.py): device (unix port) against host reader,
and regression tests of the faults it found. benchmarks/fuzz.py runs the same at >= 10,000 per format."""

import random
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzzing  # noqa: E402

from mpyml import device, iir  # noqa: E402
from mpyml.formats import linear as linear_format, nets as nets_format  # noqa: E402

# Mutants per format in `make test` (a few thousand in all, well under two minutes).
SIZES = {"mpyml-neighbors": 900, "mpyml-linear": 900, "mpyml-iir": 600, "mpyml-nets": 900, "npy": 500,
         "mpyml-trees": 1800, "mpyml-mixture": 900}


@pytest.mark.parametrize("name", sorted(fuzzing.FORMATS))
def test_fuzzed_files_are_refused_cleanly_or_load_as_on_the_host(name):
    report = fuzzing.fuzz(fuzzing.FORMATS[name], SIZES[name], seed=20261130)
    summary = "\n".join("%s (%s): %s" % (problem, kind, detail) for problem, kind, detail, _ in report.findings[:10])
    assert report.tried >= SIZES[name]
    assert (report.crashes, report.hangs, report.silent_accepts, report.disagreements) == (0, 0, 0, 0), summary
    assert report.truncated > 50 and report.truncated_loaded == 0, summary
    assert report.loads >= len(fuzzing.FORMATS[name].make_seeds(Path(__import__("tempfile").mkdtemp()))), summary
    assert report.clean_errors > report.tried // 2


def test_the_mutations_of_a_text_file_reach_the_parsers_behind_the_end_record():
    """Resealed mutants carry a valid end record: what the loaders then refuse, they refuse for the record."""
    rng = random.Random(1)
    body = b"mpyml-iir,2\ndtype,float32\nn_stages,1\nstages\n3f800000,0,0,3f800000,0,0\n"
    sealed = fuzzing.seal(body)
    assert sealed.endswith(b"end,5,%08x\n" % zlib.crc32(body))
    names = {fuzzing.mutate_text(sealed, rng)[0] for _ in range(300)}
    assert any(n.endswith("(resealed)") for n in names) and "end record edit" in names
    cuts = fuzzing.truncations(sealed, rng, 0)
    assert len(sealed) - 1 not in cuts and all(0 <= c < len(sealed) - 1 for c in cuts)


# ---------------------------------------------------------------- regressions of what the fuzzer found

def _iir_file(tmp_path):
    from scipy import signal

    return iir.dumps(signal.butter(2, 0.2, output="sos"))


DEVICE_LOAD = """
import emliir
for path in %r:
    try:
        emliir.load(path)
        print('loaded')
    except ValueError as e:
        print('ValueError', e)
"""


def test_an_end_record_crc_in_uppercase_is_refused_on_both_sides(tmp_path):
    text = _iir_file(tmp_path)
    upper = text[:-9] + text[-9:].upper()
    assert upper != text
    path = tmp_path / "upper.txt"
    path.write_text(upper)
    with pytest.raises(ValueError, match="CRC-32"):
        iir.loads(upper)
    out = device.run(DEVICE_LOAD % [str(path)]).split("\n")
    assert out[0].startswith("ValueError") and "its CRC-32 is" in out[0]


def test_a_negative_label_count_is_refused_on_the_device(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mpyml

    X, y = load_iris(return_X_y=True)
    mpyml.export(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y), tmp_path / "m.csv")
    body = (tmp_path / "m.csv").read_bytes().rsplit(b"end,", 1)[0]
    # no feature names -> 'feature_names,str,0'; a negative count read as range(-5) was zero labels
    assert b"feature_names,str,0\n" in body
    path = tmp_path / "neg.csv"
    path.write_bytes(fuzzing.seal(body.replace(b"feature_names,str,0\n", b"feature_names,str,-5\n")))
    with pytest.raises(ValueError, match="the number of labels"):
        linear_format.load(path)
    out = device.run("import emllinear\nm = emllinear.new(4, 100)\ntry:\n    emllinear.load_model(m, %r)\n"
                     "    print('loaded')\nexcept ValueError as e:\n    print(e)\n" % str(path))
    assert "the number of labels must be 0..2147483648, got -5" in out


@pytest.fixture(scope="module")
def transformer_file(tmp_path_factory):
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mpyml

    X, _ = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("linear") / "pca.csv"
    mpyml.export(make_pipeline(StandardScaler(), PCA(2)).fit(X), path)
    return path.read_bytes().rsplit(b"end,", 1)[0]


LINEAR_LOAD = "import emllinear\nm = emllinear.new(4, 100)\ntry:\n    emllinear.load_model(m, %r)\n" \
              "    print('loaded')\nexcept ValueError as e:\n    print(e)\n"


@pytest.mark.parametrize("edit, message", [
    ((b"max_width,4\n", b"max_width,255\n"), "max_width is not the widest of n_features and every step's n_out"),
    ((b"n_outputs,2\n", b"n_outputs,255\n"), "the last step's width does not fit the model kind, n_outputs and proba"),
])
def test_linear_headers_that_disagree_with_the_steps_are_refused_on_both_sides(tmp_path, transformer_file, edit, message):
    assert edit[0] in transformer_file
    path = tmp_path / "edited.csv"
    path.write_bytes(fuzzing.seal(transformer_file.replace(*edit)))
    with pytest.raises(ValueError, match="line 1[0-9]: "):
        linear_format.load(path)
    assert message in device.run(LINEAR_LOAD % str(path))


@pytest.fixture(scope="module")
def int8_net(tmp_path_factory):
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    import mpyml

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=200, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("nets") / "int8.bin"
    mpyml.export(clf, path, quantize="int8", representative_data=X)
    return path.read_bytes(), X[:3]


def _crc_fixed(raw: bytearray) -> bytes:
    struct.pack_into("<I", raw, 12, zlib.crc32(bytes(raw[16:])))
    return bytes(raw)


def test_the_host_nets_reader_refuses_what_the_device_refuses_with_its_message(tmp_path, int8_net):
    data, _ = int8_net
    raw = bytearray(data)
    raw[16 + nets_format.NET_HEADER.size] = 9  # layer 0's kind, CRC fixed up
    path = tmp_path / "kind.bin"
    path.write_bytes(_crc_fixed(raw))
    with pytest.raises(ValueError, match="layer 0: unknown layer kind"):
        nets_format.load(path)
    out = device.run("import emlcnn\nn = emlcnn.new(64)\ntry:\n    emlcnn.load_model(n, %r)\nexcept ValueError as e:\n"
                     "    print(e)\n" % str(path))
    assert "layer 0: unknown layer kind" in out


def test_the_host_nets_mirror_uses_the_files_inverse_input_scale(tmp_path, int8_net):
    data, X = int8_net
    raw = bytearray(data)
    inv = struct.unpack_from("<f", raw, 16 + 32)[0]
    struct.pack_into("<f", raw, 16 + 32, inv * 3)  # not 1/scale any more: the device uses it as written
    path = tmp_path / "inv.bin"
    path.write_bytes(_crc_fixed(raw))
    stored = nets_format.load(path)
    assert stored.input_inv_scale == np.float32(inv * 3)
    script = ("import emlcnn, array\nn = emlcnn.new(%d)\nemlcnn.load_model(n, %r)\nout = array.array('f', bytes(12))\n"
              "for row in %r:\n    n.predict(array.array('f', row), out)\n    print(bytes(out).hex())\n"
              % (stored.arena_bytes, str(path), X.tolist()))
    expected = [y.astype("<f4").tobytes().hex() for y in stored.outputs(X.astype(np.float32))]
    assert device.run(script).split() == expected


NPY_CASES = {
    "latin-1 header byte": (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xa0", "not ASCII text"),
    "minor version": (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "version 1.1 is not supported"),
    "extra key": (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }", "not the dict numpy writes"),
    "shape not a tuple": (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", "not the dict numpy writes"),
    "vertical tab": (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\x0b", "is not a dict"),
    "too large": (b"{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 0), }", "too large"),
}


@pytest.mark.parametrize("case", sorted(NPY_CASES))
def test_npyfile_refuses_headers_numpy_refuses(tmp_path, case):
    header, message = NPY_CASES[case]
    header = header + b" " * (-(len(header) + 11) % 64) + b"\n"
    version = b"\x01\x01" if case == "minor version" else b"\x01\x00"
    data = b"\x93NUMPY" + version + struct.pack("<H", len(header)) + header + b"\0" * 8
    with pytest.raises(Exception):
        np.load(__import__("io").BytesIO(data), allow_pickle=False)
    path = tmp_path / "bad.npy"
    path.write_bytes(data)
    out = device.run("import npyfile\ntry:\n    npyfile.load(%r)\n    print('loaded')\nexcept ValueError as e:\n"
                     "    print('ValueError', e)\n" % str(path), extra_path=[fuzzing.NPYFILE_DIR])
    assert out.startswith("ValueError") and message in out, out


@pytest.mark.parametrize("label, message", [
    ("%4", "bad %XX escape"),  # one hex digit: was read as 0x04 on the host
    ("%4a", "bad %XX escape"),  # lowercase hex: the writer escapes in uppercase
])
def test_bad_label_escapes_are_refused_on_both_sides(tmp_path, transformer_file, label, message):
    _refused_on_both(tmp_path, transformer_file, b"feature_names,str,0\n",
                     b"feature_names,str,4\nlabel,a\nlabel,b\nlabel,c\nlabel," + label.encode() + b"\n", message)


def test_int_labels_are_ascii_decimal_on_both_sides(tmp_path, transformer_file):
    """'\u0663' (ARABIC-INDIC DIGIT THREE) is 3 for CPython's int(), not for the device."""
    _refused_on_both(tmp_path, transformer_file, b"feature_names,str,0\n",
                     "feature_names,int,4\nlabel,1\nlabel,2\nlabel,\u0663\nlabel,4\n".encode(), "int label")


def test_unicode_spaces_are_part_of_a_record_on_both_sides(tmp_path, transformer_file):
    """CPython's strip() removes U+2028 and \\x1c, MicroPython's does not: the host strips as the device."""
    body = transformer_file.replace(b"feature_names,str,0\n", "feature_names,str,4\nlabel,a\nlabel,b\nlabel,c\nlabel,\u2028\n".encode())
    path = tmp_path / "spaces.csv"
    path.write_bytes(fuzzing.seal(body))
    assert linear_format.load(path).feature_names[-1] == "\u2028"
    out = device.run("import emllinear\nm = emllinear.new(4, 100)\nemllinear.load_model(m, %r)\n"
                     "print(m.feature_names[-1].encode())\n" % str(path))
    assert out.strip() == "b'\\xe2\\x80\\xa8'"


def _refused_on_both(tmp_path, body, old, new, message):
    assert old in body
    path = tmp_path / "labels.csv"
    path.write_bytes(fuzzing.seal(body.replace(old, new)))
    with pytest.raises(ValueError, match=message):
        linear_format.load(path)
    assert message in device.run(LINEAR_LOAD % str(path))


# ---------------------------------------------------------------- mpyml-trees and mpyml-mixture

@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """The fuzzer's seed files of both formats, by name (their modules built)."""
    from mpyml import build

    tmp = tmp_path_factory.mktemp("seeds")
    for module in ("emltrees", "emlmixture"):
        build.build(module, "x64")
    return {s.name: (name, s) for name in ("mpyml-trees", "mpyml-mixture") for s in fuzzing.FORMATS[name].make_seeds(tmp)}


def _both_sides(tmp_path, seeds, seed_name, edit):
    """(device Outcome, host Outcome) of a seed whose records before the end record went through
    edit(lines) and were sealed again."""
    fmt_name, seed = seeds[seed_name]
    fmt = fuzzing.FORMATS[fmt_name]
    lines = seed.data.decode().split("\n")[:-2]
    data = fuzzing.seal(("\n".join(edit(lines)) + "\n").encode())
    path = tmp_path / "edited.csv"
    path.write_bytes(data)
    device_outcome = fuzzing.run_device(fmt, [str(path)], [0], tmp_path, [seed])[0]
    return device_outcome, fuzzing.host_outcome(fmt, data, seed)


def _replace_after(section, offset, field, text):
    """Edit: field `field` of the record `offset` lines after the section line `section` becomes `text`."""
    def edit(lines):
        i = lines.index(section) + 1 + offset
        fields = lines[i].split(",")
        fields[field] = text
        return lines[:i] + [",".join(fields)] + lines[i + 1:]
    return edit


def _replace_line(key, text):
    return lambda lines: [text if line.split(",")[0] == key else line for line in lines]


# Numbers the device's int() / float() read differently from CPython's (MicroPython takes '1__0' and
# '+1', CPython takes Unicode digits): both sides now take ASCII decimal as the writers write it.
STRICT_NUMBER_CASES = [
    ("forest_counts_str_names", _replace_after("trees", 0, 0, "0__0"), "decimal integer"),
    ("forest_counts_str_names", _replace_after("trees", 0, 0, "+0"), "decimal integer"),
    ("forest_counts_str_names", _replace_after("nodes", 0, 0, "\u0663"), "decimal integer"),
    ("forest_counts_str_names", _replace_after("nodes", 0, 2, "-1_"), "decimal integer"),
    ("tree_int16_counts", _replace_after("nodes", 0, 1, " 8"), "decimal integer"),
    ("forest_counts_str_names", _replace_after("leaves", 0, 0, "0:+1"), "decimal integer"),
    ("forest_hard_int16", _replace_after("leaves", 0, 0, "0_0"), "decimal integer"),
    ("forest_counts_str_names", _replace_line("n_nodes", "n_nodes,1_4"), "decimal integer"),
    ("regressor_float32", _replace_after("leaves", 0, 0, "1__5"), "decimal number"),
    ("regressor_float32", _replace_after("leaves", 0, 0, "\u0663.5"), "decimal number"),
    ("regressor_float32", _replace_after("leaves", 0, 0, "1.5E3"), "decimal number"),
    ("regressor_float32", _replace_after("leaves", 0, 0, "infinity"), "decimal number"),
    ("gmm_tied", _replace_line("n_features", "n_features,+4"), "decimal integer"),
    ("naive_bayes_float", _replace_after("classes,float,3", 0, 1, "\u0663"), "decimal number"),
    ("naive_bayes_float", _replace_after("classes,float,3", 0, 1, "1__0"), "decimal number"),
    ("naive_bayes_float", _replace_after("classes,float,3", 0, 1, "Infinity"), "decimal number"),
]


@pytest.mark.parametrize("seed_name, edit, message", STRICT_NUMBER_CASES)
def test_numbers_are_ascii_decimal_on_both_sides(tmp_path, seeds, seed_name, edit, message):
    device_outcome, host_outcome = _both_sides(tmp_path, seeds, seed_name, edit)
    assert device_outcome.status == "error" and message in device_outcome.text, device_outcome
    assert host_outcome.status == "error" and message in host_outcome.text, host_outcome


def test_a_float64_leaf_names_each_class_once_even_after_a_zero(tmp_path, seeds):
    """'0:<zero bits>,0:<one bits>' loaded on the device: its duplicate check looked for non-zero text."""
    zero_then_one = _replace_after("leaves", 0, 0, "0:0000000000000000,0:3ff0000000000000")
    device_outcome, host_outcome = _both_sides(tmp_path, seeds, "forest_float64_balanced",
                                               lambda lines: zero_then_one(lines)[:-1] + [lines[-1]])
    assert device_outcome.status == "error" and "once" in device_outcome.text, device_outcome
    assert host_outcome.status == "error" and "once" in host_outcome.text, host_outcome


def test_mixture_sizes_of_2_64_and_above_are_refused_not_wrapped(tmp_path, seeds):
    """n_features 2**64 + 4 loaded as a 4-feature model: the glue range-checked the truncated machine word."""
    for text in ("18446744073709551620", "18446744073709551616", "4611686018427387908"):
        device_outcome, host_outcome = _both_sides(tmp_path, seeds, "gmm_tied", _replace_line("n_features", "n_features," + text))
        assert device_outcome.status == "error" and "bad header" in device_outcome.text, device_outcome
        assert host_outcome.status == "error" and "bad header" in host_outcome.text, host_outcome


def test_kmeans_distances_that_overflow_are_inf_on_both_sides(tmp_path, seeds):
    """The host's sqrtf mirror gave NaN for an infinite squared distance, the device +inf."""
    device_outcome, host_outcome = _both_sides(tmp_path, seeds, "kmeans", _replace_after("values", 0, 0, "7f7fffff"))
    assert device_outcome.status == host_outcome.status == "loaded"
    assert device_outcome.text == host_outcome.text and "0000807f" in device_outcome.text


# What the host readers let through that the device refuses (trees_format.read and mixture_format.load
# read every file before, the device refusing it later): each one is now refused on both sides.
HOST_READER_CASES = [
    ("forest_counts_str_names", _replace_after("nodes", 0, 0, "4"), "feature index"),
    ("forest_counts_str_names", _replace_after("nodes", 1, 2, "0"), "child offset"),
    ("forest_counts_str_names", _replace_after("nodes", 0, 3, "40"), "past the last node"),
    ("forest_counts_str_names", _replace_after("nodes", 0, 2, "-99"), "leaf reference"),
    ("forest_counts_str_names", _replace_after("nodes", 0, 1, "7fc00000"), "NaN"),
    ("forest_counts_str_names", _replace_after("leaves", 0, 0, "3:1"), "class must be 0..2"),
    ("forest_counts_str_names", _replace_after("leaves", 0, 0, "0:65536"), "1..65535"),
    ("forest_counts_str_names", _replace_line("n_classes", "n_classes,4"), "classes"),
    ("adaboost_samme", _replace_after("trees", 0, 1, "bff0000000000000"), "weight"),
    ("adaboost_samme", _replace_after("trees", 0, 1, "+ff0000000000000"), "hex"),
    ("forest_float64_balanced", _replace_after("leaves", 0, 0, "0:3ff0000000000001"), "0..1"),
    ("gmm_full_threshold", _replace_after("values", 0, 0, "7f800000"), "NaN or infinite"),
    ("gmm_tied", _replace_after("values", 0, 0, "3f800000,3f800000"), "wrong number of values"),
    ("kmeans", _replace_after("values", 3, 0, "4b800001"), "count must be 0..16777216"),
    ("kmeans", _replace_line("threshold", "threshold,3f800000"), "bad header"),
    ("envelope", _replace_line("threshold", "threshold,none"), "bad header"),
    ("naive_bayes_str", _replace_line("classes", "classes,str,2"), "label"),
]


@pytest.mark.parametrize("seed_name, edit, message", HOST_READER_CASES)
def test_the_host_readers_refuse_what_the_device_refuses(tmp_path, seeds, seed_name, edit, message):
    device_outcome, host_outcome = _both_sides(tmp_path, seeds, seed_name, edit)
    assert device_outcome.status == "error" and host_outcome.status == "error", (device_outcome, host_outcome)
    assert message in device_outcome.text or message in host_outcome.text, (device_outcome, host_outcome)


def test_int_labels_beyond_int64_keep_their_value_and_type_on_the_host(tmp_path, seeds):
    """Classes [0, 2**63, 2]: numpy.asarray made them float64 on the host, the device keeps Python ints."""
    device_outcome, host_outcome = _both_sides(tmp_path, seeds, "adaboost_samme",
                                               _replace_after("classes,int,3", 1, 1, "9223372036854775808"))
    assert device_outcome.status == host_outcome.status == "loaded"
    assert device_outcome.text.endswith(" i0;i9223372036854775808;i2")
    assert fuzzing.FORMATS["mpyml-trees"].same(device_outcome.text, host_outcome.text), (device_outcome, host_outcome)
