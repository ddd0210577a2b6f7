"""mpy/npyfile: the portable .npy reader/writer, under CPython and the unix port, against numpy."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mpyml import device

REPO = Path(__file__).resolve().parent.parent
NPYFILE_DIR = REPO / "mpy" / "npyfile"
DATA_DIR = REPO.parent / "shared" / "datasets" / "har_exercise_1" / "raw" / "data"
DATASET_FILES = sorted(DATA_DIR.glob("*.npy"))

sys.path.insert(0, str(NPYFILE_DIR))
import npyfile  # noqa: E402

needs_dataset = pytest.mark.skipif(not DATASET_FILES, reason="dataset %s not present" % DATA_DIR)


def run_cpython(script):
    env = dict(os.environ, PYTHONPATH=str(NPYFILE_DIR))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_both(script):
    """The same script's stdout from CPython and from the unix port."""
    return run_cpython(script), device.run(script, extra_path=[NPYFILE_DIR])


def numpy_items_present(path):
    """(header's shape, dtype, the whole items present after the header) as numpy sees the file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        data = f.read()
    n = len(data) // dtype.itemsize
    return shape, dtype, np.frombuffer(data[:n * dtype.itemsize], dtype=dtype)


# prints, per file, either the values' shape and checksum or the error's message, for both interpreters
DATASET_SCRIPT = """
import npyfile
for path in %r:
    try:
        shape, values = npyfile.load(path)
        print('ok', shape, len(values), sum(values))
    except ValueError as e:
        print('error', str(e))
        try:
            shape, values = npyfile.load(path, allow_truncated=True)
            print('partial', shape, len(values), sum(values))
        except ValueError as e:
            print('error', str(e))
"""


@needs_dataset
def test_every_dataset_file_cpython_and_unix_port_agree_with_numpy():
    assert len(DATASET_FILES) == 134
    paths = [str(p) for p in DATASET_FILES]
    cpython, unix = run_both(DATASET_SCRIPT % (paths,))
    assert cpython == unix
    lines = iter(cpython.splitlines())
    n_truncated = 0
    for path in DATASET_FILES:
        line = next(lines)
        if path.stat().st_size == 0:
            assert line == "error %s: not a .npy file: it is empty" % path
            assert next(lines).startswith("error %s: not a .npy file: it is empty" % path)
            n_truncated += 1
            continue
        shape, dtype, present = numpy_items_present(path)
        assert dtype == np.dtype("<i2") and len(shape) == 2 and shape[1] == 3
        promised = int(np.prod(shape))
        if len(present) == promised:
            expected = np.load(path)
            assert line == "ok %s %d %d" % (tuple(expected.shape), expected.size, int(expected.astype(np.int64).sum()))
            continue
        n_truncated += 1
        with pytest.raises(ValueError, match="Failed to read all data"):
            np.load(path)
        assert line == ("error %s: truncated .npy file: header promises %d items (1000, 3) of '<i2', file holds %d "
                        "(%d complete rows of 3) (pass allow_truncated=True to read what is there)"
                        % (path, promised, len(present), len(present) // 3))
        rows = len(present) // 3
        assert next(lines) == "partial (%d, 3) %d %d" % (rows, len(present), int(present.astype(np.int64).sum()))
    assert n_truncated == 14


@needs_dataset
def test_partial_read_in_chunks_returns_exactly_the_items_present():
    truncated = [p for p in DATASET_FILES if p.stat().st_size > 0 and len(numpy_items_present(p)[2]) < 3000]
    for path in truncated[:4]:
        present = numpy_items_present(path)[2]
        with npyfile.Reader(str(path), allow_truncated=True) as r:
            assert r.truncated and r.n_items == len(present) and r.n_items_promised == 3000
            chunks = list(r.read_data_chunks(128))
        assert all(len(c) == 128 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 128
        assert np.array_equal(np.concatenate([np.array(c, dtype=np.int16) for c in chunks]), present)


DTYPES = ["<i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"]
TYPECODES = {"<i1": "b", "|u1": "B", "<i2": "h", "<u2": "H", "<i4": "i", "<u4": "I", "<i8": "q", "<u8": "Q",
             "<f4": "f", "<f8": "d"}


def _sample(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.array([[0.5, -1.25, 3e5], [1e-3, -0.0, 7.0]], dtype=dtype)
    info = np.iinfo(dtype)
    return np.array([[info.min, 0, info.max], [1, info.max // 3, info.min // 5 if info.min else 7]], dtype=dtype)


READ_SCRIPT = """
import npyfile
for path in %r:
    with npyfile.Reader(path) as r:
        info = (r.shape, r.typecode, r.itemsize, r.fortran_order)
    shape, values = npyfile.load(path)
    assert shape == info[0]
    print(info[0], info[1], info[2], info[3], list(values))
"""


def test_every_dtype_and_fortran_order_and_version_2_read_on_both_interpreters(tmp_path):
    paths, expected = [], []
    for i, dtype in enumerate(DTYPES):
        a = _sample(dtype)
        np.save(tmp_path / ("c%d.npy" % i), a)
        np.save(tmp_path / ("f%d.npy" % i), np.asfortranarray(a))
        paths += [str(tmp_path / ("c%d.npy" % i)), str(tmp_path / ("f%d.npy" % i))]
        for fortran in (False, True):  # load() returns C order either way
            expected.append((a.shape, TYPECODES[dtype], a.itemsize, fortran, a.ravel().tolist()))
    with open(tmp_path / "v2.npy", "wb") as f:
        a = _sample("<i4")
        np.lib.format.write_array(f, a, version=(2, 0))
    paths.append(str(tmp_path / "v2.npy"))
    expected.append((a.shape, "i", 4, False, a.ravel().tolist()))
    cpython, unix = run_both(READ_SCRIPT % (paths,))
    assert cpython.replace("-0.0", "0.0") == unix.replace("-0.0", "0.0")
    for line, (shape, code, size, fortran, values) in zip(cpython.splitlines(), expected):
        assert line == "%s %s %d %s %s" % (shape, code, size, fortran, values)


WRITE_SCRIPT = """
import array, npyfile
values = array.array(%(code)r, %(values)r)
npyfile.save(%(path)r, values, shape=%(shape)r)
with npyfile.Writer(%(path2)r, (None, 3), %(code)r) as w:
    for start in range(0, len(values), 3):
        w.write_values(values[start:start + 3])
"""


@pytest.mark.parametrize("dtype", DTYPES)
def test_writer_keeps_the_dtype_and_fills_in_an_unknown_length(tmp_path, dtype):
    a = _sample(dtype)
    for runner, tag in ((run_cpython, "cpython"), (lambda s: device.run(s, extra_path=[NPYFILE_DIR]), "unix")):
        path, path2 = tmp_path / (tag + ".npy"), tmp_path / (tag + "_stream.npy")
        runner(WRITE_SCRIPT % dict(code=TYPECODES[dtype], values=a.ravel().tolist(), path=str(path),
                                   path2=str(path2), shape=a.shape))
        for p in (path, path2):
            back = np.load(p)
            assert back.dtype == np.dtype(dtype) and back.shape == a.shape and np.array_equal(back, a)
            assert (len(p.read_bytes()) - a.nbytes) % 64 == 0  # data start aligned as numpy aligns it


def test_file_objects_and_calling_forms_of_micropython_npyfile():
    import array

    f = io.BytesIO()
    npyfile.save(f, array.array("f", [1.0, 2.5, -3.0, 4.0]), shape=(2, 2))
    f.seek(0)
    shape, values = npyfile.load(f)
    assert shape == (2, 2) and list(values) == [1.0, 2.5, -3.0, 4.0]
    assert np.array_equal(np.load(io.BytesIO(f.getvalue())), [[1.0, 2.5], [-3.0, 4.0]])
    f.seek(0)
    with npyfile.Reader(f) as r:
        assert (r.shape, r.typecode, r.itemsize) == ((2, 2), "f", 4)
        assert [list(c) for c in r.read_data_chunks(3)] == [[1.0, 2.5, -3.0], [4.0]]
    g = io.BytesIO()
    w = npyfile.Writer(g, (3,), "h")
    w.write_values(array.array("h", [1, 2, 3]))
    w.close()
    assert np.load(io.BytesIO(g.getvalue())).tolist() == [1, 2, 3]


def _header_file(header: bytes, data=b"", version=b"\x01\x00"):
    length = len(header)
    if version == b"\x01\x00":
        return b"\x93NUMPY" + version + length.to_bytes(2, "little") + header + data
    return b"\x93NUMPY" + version + length.to_bytes(4, "little") + header + data


BAD_FILES = {
    "empty": (b"", "not a .npy file: it is empty"),
    "magic": (b"PK\x03\x04 this is a zip", r"not a .npy file: starts with b'PK\\x03\\x04 t', expected b'\\x93NUMPY'"),
    "short header": (b"\x93NUMPY\x01\x00\x40\x00{'descr'", "file ends inside the header \\(8 of 64 bytes\\)"),
    "version": (_header_file(b"{}", version=b"\x04\x00"), "format version 4.0 is not supported"),
    "big endian": (_header_file(b"{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }"), "'>i2' is big-endian"),
    "unicode": (_header_file(b"{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }"), "'<U3' is not supported"),
    "structured": (_header_file(b"{'descr': [('a', '<i2')], 'fortran_order': False, 'shape': (2,), }"),
                   "only simple numeric dtypes"),
    "no shape": (_header_file(b"{'descr': '<i2', 'fortran_order': False, }"), "header has no 'shape'"),
    "bad shape": (_header_file(b"{'descr': '<i2', 'fortran_order': False, 'shape': (2, x), }"),
                  "non-integer dimension 'x'"),
    "empty descr": (_header_file(b"{'descr': '', 'fortran_order': False, 'shape': (2,), }"), "empty 'descr'"),
    "one-quote descr": (_header_file(b"{'descr': ', 'fortran_order': False, 'shape': (2,), }"), "is not supported"),
    "partial item": (_header_file(b"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", b"\x01\x00\x00\x00\x02"),
                     "header promises 2 items \\(2,\\) of '<i4', file holds 1 and 1 bytes of a partial item"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_clear_errors_on_both_interpreters(tmp_path, case):
    content, message = BAD_FILES[case]
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        npyfile.load(str(path))
    script = ("import npyfile\ntry:\n    npyfile.load(%r)\n    print('loaded')\n"
              "except ValueError as e:\n    print('ValueError', e)\n" % str(path))
    cpython, unix = run_both(script)
    assert cpython == unix and cpython.startswith("ValueError %s: " % path)


FORTRAN_SCRIPT = """
import npyfile
for path in %r:
    shape, values = npyfile.load(path)
    print('load', shape, list(values))
    with npyfile.Reader(path) as r:
        try:
            list(r.read_data_chunks(5))
            print('chunks', 'read')
        except ValueError as e:
            print('chunks', 'ValueError', e)
        print('file order', [list(c) for c in r.read_data_chunks(5, file_order=True)])
"""


def _fortran_cases(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.5, 2.0, -3.0, 4.25], "y": [5.0, 6.0, 7.5, 8.0], "z": [9.0, -10.0, 11.0, 12.0]})
    cases = {
        "frame": frame.to_numpy().astype(np.float32),  # column-major, as DataFrame.to_numpy() gives it
        "3d": np.asfortranarray(np.arange(24, dtype="<i2").reshape(2, 3, 4)),
        "4d": np.asfortranarray(np.arange(36, dtype="<i4").reshape(2, 1, 3, 6)),
        "2d_u1": np.asfortranarray(np.arange(12, dtype="|u1").reshape(3, 4)),
    }
    assert cases["frame"].flags["F_CONTIGUOUS"] and not cases["frame"].flags["C_CONTIGUOUS"]
    for name, a in cases.items():
        np.save(tmp_path / (name + ".npy"), a)
    return cases


def test_fortran_order_is_read_in_c_order_on_both_interpreters(tmp_path):
    cases = _fortran_cases(tmp_path)
    paths = [str(tmp_path / (name + ".npy")) for name in cases]
    cpython, unix = run_both(FORTRAN_SCRIPT % (paths,))
    assert cpython == unix
    lines = iter(cpython.splitlines())
    for path, a in zip(paths, cases.values()):
        assert next(lines) == "load %s %s" % (a.shape, a.ravel(order="C").tolist())
        assert next(lines) == ("chunks ValueError %s: Fortran-order array of shape %s: its file order is column by "
                               "column; npyfile.load() returns it in C order, or pass file_order=True to stream columns"
                               % (path, a.shape))
        flat = a.ravel(order="F").tolist()
        assert next(lines) == "file order %s" % [flat[i:i + 5] for i in range(0, len(flat), 5)]


def test_fortran_order_that_is_also_c_order_streams_and_truncated_fortran_is_refused(tmp_path):
    # a (1, 5) or (4, 1) array is the same in both orders: numpy may mark it either way
    for shape, chunks in (((1, 5), [[0, 1, 2], [3, 4]]), ((4, 1), [[0, 1, 2], [3]])):
        header = ("{'descr': '<i2', 'fortran_order': True, 'shape': %s, }" % (shape,)).encode()
        (tmp_path / "one.npy").write_bytes(_header_file(header, np.arange(np.prod(shape), dtype="<i2").tobytes()))
        with npyfile.Reader(str(tmp_path / "one.npy")) as r:
            assert r.fortran_order and [list(c) for c in r.read_data_chunks(3)] == chunks
        loaded_shape, values = npyfile.load(str(tmp_path / "one.npy"))
        assert loaded_shape == shape and list(values) == list(range(int(np.prod(shape))))
    data = io.BytesIO()
    np.save(data, np.asfortranarray(np.arange(12, dtype="<i2").reshape(4, 3)))
    (tmp_path / "cut.npy").write_bytes(data.getvalue()[:-6])
    with pytest.raises(ValueError, match="truncated Fortran-order array of shape \\(4, 3\\): its rows cannot be rebuilt "
                                         "\\(9 of 12 items present\\)"):
        npyfile.load(str(tmp_path / "cut.npy"), allow_truncated=True)
    with pytest.raises(ValueError, match="header promises 12 items \\(4, 3\\) of '<i2', file holds 9 \\(pass"):
        npyfile.load(str(tmp_path / "cut.npy"))


def test_a_huge_header_length_is_refused_before_reading_it(tmp_path):
    data = io.BytesIO()
    np.save(data, np.arange(10, dtype="<i2"))
    relabelled = bytearray(data.getvalue())
    relabelled[6] = 2  # version 1.0 read as 2.0: the u16 length and two header bytes become a u32
    header_len = int.from_bytes(relabelled[8:12], "little")
    assert header_len > 600_000_000
    (tmp_path / "v2.npy").write_bytes(bytes(relabelled))
    message = "not a .npy file: file ends inside the header (%d of %d bytes)" % (len(relabelled) - 12, header_len)
    script = ("import npyfile\ntry:\n    npyfile.load(%r)\nexcept ValueError as e:\n    print(e)\n" % str(tmp_path / "v2.npy"))
    cpython, unix = run_both(script)
    assert cpython == unix == "%s: %s\n" % (tmp_path / "v2.npy", message)
    # a stream that cannot seek: its size is unknown, so the length itself is bounded
    read_fd, write_fd = os.pipe()
    os.write(write_fd, bytes(relabelled))
    os.close(write_fd)
    with open(read_fd, "rb", buffering=0) as pipe:
        with pytest.raises(ValueError, match="header length %d is not supported \\(at most 10000\\)" % header_len):
            npyfile.Reader(pipe)


def test_writer_errors():
    import array

    with pytest.raises(ValueError, match="typecode 'x' has no .npy dtype"):
        npyfile.Writer(io.BytesIO(), (3,), "x")
    with pytest.raises(TypeError, match="expected array\\('h'\\), got typecode 'f'"):
        npyfile.Writer(io.BytesIO(), (3,), "h").write_values(array.array("f", [1.0]))
    w = npyfile.Writer(io.BytesIO(), (3,), "h")
    with pytest.raises(ValueError, match="writing 4 more items exceeds shape \\(3,\\)"):
        w.write_values(array.array("h", [1, 2, 3, 4]))
    w.write_values(array.array("h", [1, 2]))
    with pytest.raises(ValueError, match="shape \\(3,\\) promises 3 items, 2 were written"):
        w.close()
    with pytest.raises(ValueError, match="shape \\(2,\\) holds 2 items, the array has 3"):
        npyfile.save(io.BytesIO(), array.array("h", [1, 2, 3]), shape=(2,))


def test_truncation_of_a_stream_that_cannot_seek_is_found_while_reading():
    import threading

    data = io.BytesIO()
    np.save(data, np.arange(12, dtype="<i2").reshape(4, 3))
    content = data.getvalue()[:-7]  # 8 whole items of 12, and half an item
    for allow in (False, True):
        read_fd, write_fd = os.pipe()
        writer = threading.Thread(target=lambda: (os.write(write_fd, content), os.close(write_fd)))
        writer.start()
        with open(read_fd, "rb", buffering=0) as pipe:
            reader = npyfile.Reader(pipe, allow_truncated=allow)
            if allow:
                assert [list(c) for c in reader.read_data_chunks(5)] == [[0, 1, 2, 3, 4], [5, 6, 7]]
            else:
                with pytest.raises(ValueError, match="header promises 12 items \\(4, 3\\) of '<i2', file holds 8 "
                                                     "\\(2 complete rows of 3\\) and 1 bytes of a partial item"):
                    list(reader.read_data_chunks(5))
        writer.join()


def test_mip_installs_the_portable_packages(tmp_path):
    """Serves mpy/ on loopback; the unix port's mip installs npyfile and har_features from their package.json."""
    import http.server
    import shutil
    import threading

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(REPO / "mpy"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exe = shutil.which("micropython")
    try:
        for package in ("npyfile", "har_features"):
            url = "http://127.0.0.1:%d/%s/package.json" % (server.server_address[1], package)
            subprocess.run([exe, "-c", "import mip; mip.install(%r, target='lib')" % url], cwd=tmp_path,
                           env=dict(os.environ, MICROPYPATH=".frozen"), check=True, capture_output=True, timeout=60)
    finally:
        server.shutdown()
    out = subprocess.run([exe, "-c", "import npyfile, har_features; print(har_features.n_features(3), npyfile.MAGIC)"],
                         cwd=tmp_path, env=dict(os.environ, MICROPYPATH="lib"), capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "51 b'\\x93NUMPY'", out.stderr
