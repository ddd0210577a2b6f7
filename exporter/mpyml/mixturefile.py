"""The mpyml-mixture text format (docs/formats.md): written and read on the host. The device reads
it with natmods/emlmixture/emlmixture_file.py (and writes k-means models back with it)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .mixture import COVARIANCE_TYPES, F32, KINDS, StoredMixture
from .records import FormatError, label_lines, parse_label, records, seal

FORMAT, VERSION = "mpyml-mixture", 1


def _hex(value, dtype) -> str:
    if dtype == F32:
        return "%08x" % struct.unpack("<I", struct.pack("<f", float(value)))[0]
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def _unhex(text: str, dtype) -> float:
    width = 8 if dtype == F32 else 16
    if len(text) != width:
        raise FormatError("expected %d hex digits, got %r" % (width, text[:20]))
    raw = int(text, 16).to_bytes(width // 2, "big")
    return struct.unpack(">f" if dtype == F32 else ">d", raw)[0]


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
    """A StoredMixture from a file; FormatError as the device would refuse it (end record, header)."""
    recs = iter(records(Path(path).read_bytes()))

    def value(key):
        lineno, line = next(recs)
        k, _, v = line.partition(",")
        if k != key:
            raise FormatError("line %d: expected '%s,<value>', got %r" % (lineno, key, line[:40]))
        return v

    if value(FORMAT) != str(VERSION):
        raise FormatError("this file's format version is not supported (this reader reads version %d)" % VERSION)
    kind, cov = value("kind"), value("covariance_type")
    if kind not in KINDS or cov not in COVARIANCE_TYPES:
        raise FormatError("unknown kind or covariance_type: %r, %r" % (kind, cov))
    stored = StoredMixture(kind, cov, int(value("n_features")), int(value("n_components")))
    dtype = stored.dtype
    threshold = value("threshold")
    stored.threshold = None if threshold == "none" else _unhex(threshold, dtype)
    if kind == "naive_bayes":
        _, line = next(recs)
        key, label_kind, n = line.split(",")
        stored.classes = [parse_label(label_kind, next(recs)[1].partition(",")[2]) for _ in range(int(n))]
    value("values")
    stored.rows = [np.array([_unhex(t, dtype) for t in line.split(",")], dtype=dtype) for _, line in recs]
    return stored
