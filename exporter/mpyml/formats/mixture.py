"""The mpyml-mixture text format (docs/formats.md): written and read on the host. The device reads
it with natmods/emlmixture/emlmixture_file.py (and writes k-means models back with it)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..mixture import COVARIANCE_TYPES, F32, KINDS, MAX_COUNT, MAX_WIDTH, StoredMixture
from .records import Records, label_lines, parse_hex32, parse_hex64, seal

FORMAT, VERSION = "mpyml-mixture", 1


def _hex(value, dtype) -> str:
    if dtype == F32:
        return "%08x" % struct.unpack("<I", struct.pack("<f", float(value)))[0]
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def _unhex(text: str, dtype) -> float:
    """The float of 8 (float32) or 16 (float64) hex digits of its bits, either case; NaN and
    infinities refused (the device's mpyml_mixture_parse_value)."""
    value = float(np.uint32(parse_hex32(text)).view(np.float32)) if dtype == F32 else parse_hex64(text)
    if not np.isfinite(value):
        raise FormatError("value is NaN or infinite")
    return value


def row_widths(kind: str, cov: str, d: int, k: int) -> list:
    """The number of values of each row of the values section (mpyml_mixture_row_width)."""
    if kind == "mixture":
        n_prec = 1 if cov in ("tied", "spherical") else k
        width = d if cov == "diag" else (k if cov == "spherical" else d * (d + 1) // 2)
        return [d] * k + [width] * n_prec + [k]
    if kind == "naive_bayes":
        return [d] * (2 * k) + [k, k]
    if kind == "envelope":
        return [d] * (1 + d)
    return [d] * k + [k] + ([d] if cov == "diag" else [])


def dumps(stored: StoredMixture) -> str:
    """The file's text, end record included."""
    dtype = stored.dtype
    threshold = "none" if stored.threshold is None else _hex(stored.threshold, dtype)
    lines = ["%s,%d" % (FORMAT, VERSION), "kind," + stored.kind, "covariance_type," + stored.covariance_type,
             "n_features,%d" % stored.n_features, "n_components,%d" % stored.n_components, "threshold," + threshold]
    if stored.kind == "naive_bayes":
        lines += label_lines("classes", stored.classes)
    lines.append("values")
    lines += [",".join(_hex(v, dtype) for v in np.asarray(row, dtype=dtype)) for row in stored.rows]
    return seal("\n".join(lines) + "\n")


def save(stored: StoredMixture, path) -> None:
    Path(path).write_text(dumps(stored))


def load(path) -> StoredMixture:
    """A StoredMixture from a file; FormatError as the device would refuse it (see read)."""
    return read(Path(path).read_bytes())


def read(data) -> StoredMixture:
    """A StoredMixture from a file's bytes (or text), checked as the device's emlmixture.load_model
    checks it; raises FormatError("line N: ...") where the device refuses the file."""
    found = Records(data)
    if found.value(FORMAT) != str(VERSION):
        raise found.error("this file's format version is not supported (this reader reads version %d)" % VERSION)
    kind, cov = found.value("kind"), found.value("covariance_type")
    if kind not in KINDS or cov not in COVARIANCE_TYPES:
        raise found.error("unknown kind or covariance_type: %r, %r" % (kind[:20], cov[:20]))
    d, k = found.count("n_features"), found.count("n_components")
    ok = 1 <= d <= MAX_WIDTH and 1 <= k <= MAX_WIDTH
    ok = ok and {"mixture": True, "naive_bayes": cov == "diag", "envelope": cov == "full" and k == 1,
                 "kmeans": cov in ("spherical", "diag")}[kind]
    if not ok:
        raise found.error("bad header: kind, covariance type, n_features or n_components (1..65535)")
    stored = StoredMixture(kind, cov, d, k)
    dtype = stored.dtype
    threshold = found.value("threshold")
    if threshold == "none" and kind != "envelope":
        stored.threshold = None
    elif kind in ("mixture", "envelope") and threshold != "none":
        stored.threshold = found.checked(_unhex, threshold, dtype)
    else:
        raise found.error("bad header: a mixture's threshold is bits or none, an envelope's its offset, other kinds' none")
    widths = row_widths(kind, cov, d, k)
    if (sum(widths) + d + k) * np.dtype(dtype).itemsize > 2**30:
        raise found.error("model too big for this device")
    if kind == "naive_bayes":
        stored.classes = found.labels("classes") or []
    found.section("values")
    for r, width in enumerate(widths):
        fields = found.take("a row of values").split(",")
        if len(fields) != width:
            raise found.error("wrong number of values in the row: expected %d, got %d" % (width, len(fields)))
        row = np.array([found.checked(_unhex, t, dtype) for t in fields], dtype=dtype)
        if kind == "kmeans" and r == k and not np.all((row >= 0) & (row <= MAX_COUNT)):
            raise found.error("k-means count must be 0..16777216")
        stored.rows.append(row)
    found.end("row")
    if kind == "naive_bayes" and len(stored.classes) != k:
        raise found.error("the number of classes differs from n_components")
    return stored
