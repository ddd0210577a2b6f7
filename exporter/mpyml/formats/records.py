"""What every mpyml text model format shares (docs/formats.md, "Text formats"): the end record
that detects truncation and corruption, and the label records of class labels and feature names.

Host writers build a file's text and pass it through :func:`seal`; host readers get the records
from :func:`records`, which checks the end record as the device does
(natmods/common/mpyml_records.py).
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from ..errors import FormatError
from ..labels import LABEL_TYPES, label_type

CORRUPT = "the file is truncated or corrupt: "
_ESCAPED = set(b"%,#\x7f") | set(range(0x21))
WHITESPACE = " \t\n\r\x0b\x0c"  # what MicroPython's str.strip() removes (CPython's also strips Unicode spaces)


def _is_record(line: str) -> bool:
    return bool(line) and not line.startswith("#")


def seal(text: str) -> str:
    """`text` (a whole model file but its end record, ending in a newline) with its end record
    `end,<n_records>,<crc32>` appended: the records before it and zlib's CRC-32 of its UTF-8 bytes."""
    if not text.endswith("\n"):
        raise ValueError("a model file's text must end with a newline")
    n_records = sum(1 for line in text.split("\n") if _is_record(line.strip(WHITESPACE)))
    return text + "end,%d,%08x\n" % (n_records, zlib.crc32(text.encode()))


def records(data: bytes) -> list[tuple[int, str]]:
    """The (line number, stripped line) records of a sealed file's bytes, end record checked and
    removed. Raises FormatError("line N: the file is truncated or corrupt: ...") as the device does."""
    try:
        parts = data.decode().split("\n")
    except UnicodeDecodeError as e:
        raise FormatError("%snot UTF-8 text (%s)" % (CORRUPT, e)) from None
    # Lines as the device's readline() gives them: split after each "\n" only.
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    found = [(i + 1, line.strip(WHITESPACE)) for i, line in enumerate(lines)]
    found = [(n, line) for n, line in found if _is_record(line)]
    if not found or not found[-1][1].startswith("end,"):
        raise FormatError("line %d: %sit ends without its end record" % (len(lines), CORRUPT))
    end_lineno, end_line = found[-1]
    if end_lineno != len(lines):
        raise FormatError("line %d: %sdata after the end record" % (end_lineno, CORRUPT))
    fields = end_line.split(",")
    if len(fields) != 3 or len(fields[2]) != 8:
        raise FormatError("line %d: %sexpected 'end,<n_records>,<crc32>', got %r" % (end_lineno, CORRUPT, end_line[:40]))
    body = found[:-1]
    if fields[1] != str(len(body)):
        raise FormatError("line %d: %s%d records before the end record, which says %s"
                          % (end_lineno, CORRUPT, len(body), fields[1][:12]))
    crc = zlib.crc32("".join(lines[:-1]).encode())
    if fields[2] != "%08x" % crc:
        raise FormatError("line %d: %sits CRC-32 is %08x, the end record says %s" % (end_lineno, CORRUPT, crc, fields[2]))
    return body


def parse_hex32(text: str) -> int:
    """The float32 bits of a field of exactly 8 hex digits (the device's mpyml_parse_hex32)."""
    if not re.fullmatch(r"[0-9a-fA-F]{8}", text):
        raise ValueError("expected 8 hex digits (IEEE-754 float32 bits), got %r" % text[:20])
    return int(text, 16)


def parse_int(text: str, low: int | None = None, high: int | None = None, what: str = "value") -> int:
    """A decimal integer field (-?[0-9]+, ASCII digits: the device's _int), within low..high unless
    they are None (the device's _int_in)."""
    if not re.fullmatch(r"-?[0-9]+", text):
        raise ValueError("%s: expected a decimal integer, got %r" % (what, text[:20]))
    value = int(text)
    if low is not None and not low <= value <= high:
        raise ValueError("%s must be %d..%d, got %s" % (what, low, high, text[:24]))
    return value


def parse_decimal(text: str, what: str = "value") -> float:
    """A decimal number field as the writers write it, `-?D+(.D+)?(e[+-]?D+)?` in ASCII digits (the
    device's _decimal: MicroPython's float() and CPython's accept different texts beyond that)."""
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?", text):
        raise ValueError("%s: expected a decimal number, got %r" % (what, text[:20]))
    return float(text)




def _escape(text: str) -> str:
    return b"".join(b"%%%02X" % b if b in _ESCAPED else bytes([b]) for b in text.encode()).decode()


def _unescape(text: str) -> str:
    raw = text.encode()
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == ord("%"):
            if not re.fullmatch(rb"[0-9A-F]{2}", raw[i + 1:i + 3]):
                raise ValueError("bad %%XX escape in label %r" % text[:40])
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def label_lines(key: str, labels) -> list[str]:
    """The records '<key>,<type>,<n>' and n 'label,<text>' of a list of labels."""
    kind = label_type(labels)
    values = list(np.asarray(labels, dtype=object).ravel())
    if kind == "str":
        texts = [_escape(v) for v in values]
    elif kind == "bool":
        texts = ["1" if v else "0" for v in values]
    elif kind == "float":
        texts = [repr(float(v)) for v in values]
    else:
        texts = [str(int(v)) for v in values]
    return ["%s,%s,%d" % (key, kind, len(texts))] + ["label," + t for t in texts]


def parse_label(kind: str, text: str):
    """One label from its record text (the inverse of label_lines)."""
    if kind == "str":
        return _unescape(text)
    if kind == "bool":
        if text not in ("0", "1"):
            raise FormatError("bool label must be 0 or 1, got %r" % text[:20])
        return text == "1"
    if kind == "float":  # repr of a float64, as the device's _label_float reads it
        if text in ("inf", "-inf", "nan"):
            return float(text)
        try:
            return parse_decimal(text, "float label")
        except ValueError as e:
            raise FormatError(str(e)) from None
    if kind == "int":
        if not re.fullmatch(r"-?[0-9]+", text):
            raise FormatError("int label: expected a decimal integer, got %r" % text[:20])
        return int(text)
    raise FormatError("unknown label type %r" % kind[:20])


def label_array(labels) -> np.ndarray:
    """Labels read from a file as a numpy array that keeps each one exactly: numpy's own dtype, but an
    object array for int labels that no integer dtype holds together (2**63, or -1 with 2**63), which
    numpy would make float64 (the device keeps them as Python ints)."""
    array = np.asarray(labels)
    if array.dtype.kind == "f" and any(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return np.array(labels, dtype=object)
    return array




def label_records(key: str, labels) -> list[str]:
    """label_lines of `labels`, or '<key>,str,0' for None (an estimator without feature names)."""
    if labels is None or len(labels) == 0:
        return ["%s,str,0" % key]
    return label_lines(key, labels)


def read_labels(take, key: str):
    """The labels of a '<key>,<type>,<n>' record and its n label records; take() gives the next
    (line number, line). Returns a list, or None for n = 0."""
    n, line = take()
    fields = line.split(",")
    if len(fields) != 3 or fields[0] != key or fields[1] not in LABEL_TYPES:
        raise FormatError("line %d: expected '%s,<int|str|bool|float>,<n>', got %r" % (n, key, line[:40]))
    kind = fields[1]
    try:
        count = parse_int(fields[2], 0, 2**31, "the number of labels")
    except ValueError as e:
        raise FormatError("line %d: %s" % (n, e)) from None
    labels = []
    for _ in range(count):
        n, line = take()
        fields = line.split(",")
        if len(fields) != 2 or fields[0] != "label":
            raise FormatError("line %d: expected 'label,<text>', got %r" % (n, line[:40]))
        try:
            labels.append(parse_label(kind, fields[1]))
        except (ValueError, IndexError) as e:
            raise FormatError("line %d: %s" % (n, e)) from None
    return labels or None
