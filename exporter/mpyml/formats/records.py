"""What every mpyml text model format shares (docs/formats.md, "Text formats"): the end record
that detects truncation and corruption, the numbers of its fields, and the label records of class
labels and feature names.

Host writers build a file's text and pass it through :func:`seal`; host readers read it through one
:class:`Records`, which checks the end record as the device does (natmods/common/mpyml_records_glue.h)
and takes the records in order, naming the line of whatever the device would refuse.
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


def file_bytes(data) -> bytes:
    """A model file's bytes from its bytes, its text, an open file or a list of its lines."""
    if hasattr(data, "read"):
        data = data.read()
    if isinstance(data, (list, tuple)):
        data = "".join(data)
    return data.encode() if isinstance(data, str) else bytes(data)


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


def parse_hex64(text: str) -> float:
    """The float64 of a field of exactly 16 hex digits of its bits (either case: the device's mpyml_get_hex64)."""
    if len(text) != 16:
        raise ValueError("expected 16 hex digits (IEEE-754 float64 bits), got %r" % text[:20])
    return float(np.uint64((parse_hex32(text[:8]) << 32) | parse_hex32(text[8:])).view(np.float64))


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


class Records:
    """The records of a sealed text model file, taken in order as the device's reader takes them.

    `data`: the file's bytes or text, an open file, or a list of lines. The end record is checked
    first (:func:`records`). Every method takes the next record (or checks a field of the last one
    taken) and raises FormatError("line N: ...") naming the line where the device refuses the file;
    `line` is the number of the last record taken (0 before the first).
    """

    def __init__(self, data):
        self._found = iter(records(file_bytes(data)))
        self.line = 0

    def error(self, message: str) -> FormatError:
        """A FormatError at the last record taken, to raise."""
        return FormatError("line %d: %s" % (self.line, message))

    def take(self, what: str = "a record") -> str:
        """The next record; FormatError when the file ends before it (`what` names it)."""
        for n, line in self._found:
            self.line = n
            return line
        raise self.error("%sit ends here, expected %s" % (CORRUPT, what))

    def fields(self, n_fields: int, what: str) -> list[str]:
        """The next record's comma-separated fields: exactly `n_fields` of them (0: any number)."""
        line = self.take(what)
        fields = line.split(",")
        if n_fields and len(fields) != n_fields:
            raise self.error("%s needs %d fields, got %d: %r" % (what, n_fields, len(fields), line[:40]))
        return fields

    def value(self, key: str, choices=None) -> str:
        """The value of the next record, which must be '<key>,<value>' (with a value among `choices`
        unless it is None)."""
        line = self.take("'%s,<value>'" % key)
        fields = line.split(",")
        if len(fields) != 2 or fields[0] != key:
            raise self.error("expected '%s,<value>', got %r" % (key, line[:40]))
        if choices is not None and fields[1] not in choices:
            raise self.error("%s must be one of %s, got %r" % (key, ", ".join(choices), fields[1][:20]))
        return fields[1]

    def count(self, key: str, low: int | None = None, high: int | None = None) -> int:
        """The decimal integer of the next record '<key>,<n>', within low..high unless they are None."""
        return self.int(self.value(key), low, high, key)

    def section(self, name: str) -> None:
        """The next record must be the section line `name`."""
        line = self.take("the '%s' section line" % name)
        if line != name:
            raise self.error("expected the '%s' section line, got %r" % (name, line[:40]))

    def checked(self, parse, *args):
        """parse(*args) on fields of the last record taken; its ValueError becomes a FormatError naming the line."""
        try:
            return parse(*args)
        except ValueError as e:
            raise self.error(str(e)) from None

    def int(self, text: str, low: int | None = None, high: int | None = None, what: str = "value") -> int:
        """A decimal integer field of the last record taken (:func:`parse_int`)."""
        return self.checked(parse_int, text, low, high, what)

    def hex32(self, text: str) -> int:
        """The float32 bits of a field of the last record taken (:func:`parse_hex32`)."""
        return self.checked(parse_hex32, text)

    def hex64(self, text: str) -> float:
        """The float64 of a field of the last record taken (:func:`parse_hex64`)."""
        return self.checked(parse_hex64, text)

    def float32_row(self, n_values: int, what: str = "a row of values") -> np.ndarray:
        """The next record as `n_values` float32 values, each the 8 hex digits of its bits; NaN and
        infinities refused."""
        fields = self.take(what).split(",")
        if len(fields) != n_values:
            raise self.error("expected %d values, got %d" % (n_values, len(fields)))
        values = np.array([self.hex32(v) for v in fields], dtype=np.uint32).view(np.float32)
        if not np.all(np.isfinite(values)):
            raise self.error("NaN or infinite value")
        return values

    def labels(self, key: str):
        """The labels of a '<key>,<type>,<n>' record and its n 'label,<text>' records: a list, or None for n = 0."""
        fields = self.take("'%s,<type>,<n>'" % key).split(",")
        if len(fields) != 3 or fields[0] != key or fields[1] not in LABEL_TYPES:
            raise self.error("expected '%s,<int|str|bool|float>,<n>', got %r" % (key, ",".join(fields)[:40]))
        kind = fields[1]
        count = self.int(fields[2], 0, 2**31, "the number of labels")
        labels = []
        for _ in range(count):
            fields = self.take("a label record").split(",")
            if len(fields) != 2 or fields[0] != "label":
                raise self.error("expected 'label,<text>', got %r" % ",".join(fields)[:40])
            labels.append(self.checked(parse_label, kind, fields[1]))
        return labels or None

    def end(self, after: str) -> None:
        """The file must end here, after its last record (`after` names it)."""
        for n, line in self._found:
            self.line = n
            raise self.error("unexpected line after the last %s: %r" % (after, line[:40]))
