# Line records of mpyml's text model formats (docs/formats.md), read one line
# at a time. Linked into every natmod whose loader reads a text format, beside
# that loader; `lineno` names the line an error is about. The C glue provides
# _crc32 (zlib's CRC-32, chained), which checks the file's end record, and
# _hex_row (the one strict parser of float32 bits), when it defines
# MPYML_TEXT_FORMATS (mpyml_glue.h); their qstrs, for mpy_ld's scan of a
# module's sources: MP_QSTR__crc32 MP_QSTR__hex_row.

CORRUPT = "the file is truncated or corrupt: "


class _Records:
    def __init__(self, f):
        self.f = f
        self.size = _file_size(f)  # bytes from here to the end of f, or None where f cannot tell
        self.lineno = 0
        self.n_records = 0
        self.crc = 0  # of every byte read so far
        self.crc_before = 0  # of every byte before the last line read

    def line(self):
        # The next line that is neither blank nor a comment, or None at the end.
        while True:
            line = self.f.readline()
            if not line:
                return None
            self.lineno += 1
            self.crc_before = self.crc
            self.crc = _crc32(line, self.crc)
            if isinstance(line, bytes):
                try:
                    line = line.decode()
                except UnicodeError:
                    raise ValueError(CORRUPT + "line %d is not UTF-8 text" % self.lineno) from None
            cut = line[-1:] != "\n"  # only the file's last line may lack its line end
            line = line.strip()
            if cut and not line.startswith("end,"):
                raise ValueError(CORRUPT + "it ends inside line %d" % self.lineno)
            if line and line[0] != "#":
                self.n_records += 1
                return line

    def fields(self, n_fields, what):
        # The next line's comma-separated fields: exactly n_fields, or any number when n_fields is 0.
        line = self.line()
        if line is None:
            raise ValueError(CORRUPT + "it ends after line %d, expected %s" % (self.lineno, what))
        fields = line.split(",")
        if fields[0] == "end":  # the end record where the format expects more: records are missing
            raise ValueError(CORRUPT + "it ends after line %d, expected %s" % (self.lineno - 1, what))
        if n_fields and len(fields) != n_fields:
            raise ValueError("%s needs %d fields, got %d: '%s'" % (what, n_fields, len(fields), line[:40]))
        return fields

    def value(self, key):
        fields = self.fields(2, "'%s,<value>'" % key)
        if fields[0] != key:
            raise ValueError("expected '%s,<value>', got '%s'" % (key, ",".join(fields)[:40]))
        return fields[1]

    def count(self, key, low=None, high=None):
        # The decimal number of '<key>,<n>'; with low and high, checked to be within low..high.
        if low is None:
            return _int(self.value(key), key)
        return _int_in(self.value(key), low, high, key)

    def check_size(self, n, min_bytes_each, what):
        # Refuses a declared count before allocating for it, where the file cannot hold that
        # many records: each takes at least min_bytes_each bytes of the file.
        if self.size is not None and n * min_bytes_each > self.size:
            raise ValueError(CORRUPT + "file says %d %s (at least %d bytes), the file has %d bytes"
                             % (n, what, n * min_bytes_each, self.size))

    def choice(self, key, choices):
        value = self.value(key)
        if value not in choices:
            raise ValueError("unknown %s '%s' (expected %s)" % (key, value[:20], " or ".join(sorted(choices))))
        return value

    def section(self, name):
        fields = self.fields(1, "the '%s' section line" % name)
        if fields[0] != name:
            raise ValueError("expected the '%s' section line, got '%s'" % (name, fields[0][:40]))

    def labels(self, key):
        # A '<key>,<type>,<n>' line and n 'label,<text>' records: the list of labels.
        fields = self.fields(3, "'%s,<type>,<n>'" % key)
        if fields[0] != key or fields[1] not in _LABEL_TYPES:
            raise ValueError("expected '%s,<int|str|bool|float>,<n>', got '%s'" % (key, ",".join(fields)[:40]))
        parse = _LABEL_TYPES[fields[1]]
        labels = []
        for _ in range(_int_in(fields[2], 0, 1 << 31, "the number of labels")):
            fields = self.fields(2, "a 'label,<text>' record")
            if fields[0] != "label":
                raise ValueError("expected 'label,<text>', got '%s'" % ",".join(fields)[:40])
            labels.append(parse(fields[1]))
        return labels

    def end(self, last):
        # The end record after the last record of the format: 'end,<n_records>,<crc32>'.
        n_before = self.n_records
        line = self.line()
        if line is None:
            raise ValueError(CORRUPT + "it ends after line %d without its end record" % self.lineno)
        fields = line.split(",")
        if fields[0] != "end":
            raise ValueError("unexpected line after the last %s: '%s'" % (last, line[:40]))
        if len(fields) != 3 or len(fields[2]) != 8:
            raise ValueError(CORRUPT + "expected 'end,<n_records>,<crc32>', got '%s'" % line[:40])
        if fields[1] != str(n_before):
            raise ValueError(CORRUPT + "%d records before the end record, which says %s" % (n_before, fields[1][:12]))
        if fields[2] != "%08x" % self.crc_before:  # exactly as written: 8 lowercase hex digits
            raise ValueError(CORRUPT + "its CRC-32 is %08x, the end record says %s" % (self.crc_before, fields[2]))
        if self.f.readline():
            raise ValueError(CORRUPT + "data after the end record")


def _int(text, what):
    # A decimal integer, -?[0-9]+ in ASCII digits: MicroPython's int() also takes '+', '_' and spaces.
    digits = text[1:] if text[:1] == "-" else text
    if not digits or not digits.isdigit():
        raise ValueError("%s: expected a decimal integer, got '%s'" % (what, text[:20]))
    return int(text)


def _decimal(text, what):
    # A decimal number as the writers write it, -?D+(.D+)?(e[+-]?D+)?, as a float: MicroPython's
    # float() and CPython's accept different texts beyond that ('1__0', 'infinity', Unicode digits).
    mantissa, e, exponent = (text[1:] if text[:1] == "-" else text).partition("e")
    whole, dot, fraction = mantissa.partition(".")
    if exponent[:1] in ("+", "-"):
        exponent = exponent[1:]
    if not whole.isdigit() or (dot and not fraction.isdigit()) or (e and not exponent.isdigit()):
        raise ValueError("%s: expected a decimal number, got '%s'" % (what, text[:20]))
    return float(text)


def _int_in(text, low, high, what):
    # A decimal integer within low..high, checked on the full Python int before any C code
    # narrows it (the natmod API truncates big ints to a machine word).
    value = _int(text, what)
    if not low <= value <= high:
        raise ValueError("%s must be %d..%d, got %s" % (what, low, high, text[:24]))
    return value


def _file_size(f):
    # Bytes from f's position to its end, for files that can seek; None otherwise.
    try:
        here = f.tell()
        end = f.seek(0, 2)
        f.seek(here)
        return end - here
    except Exception:
        return None


def _label_text(text):
    # Undoes the %XX escapes of a str label (docs/formats.md, "Labels").
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode()
    i = 0
    while i < len(raw):
        if raw[i] == 37:  # '%', then two uppercase hex digits
            if i + 3 > len(raw) or not all(48 <= b <= 57 or 65 <= b <= 70 for b in raw[i + 1 : i + 3]):
                raise ValueError("bad %%XX escape in label '%s'" % text[:40])
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def _label_bool(text):
    if text not in ("0", "1"):
        raise ValueError("bool label must be 0 or 1, got '%s'" % text[:20])
    return text == "1"


def _label_int(text):
    return _int(text, "int label")


def _label_float(text):
    # Python's repr of a float64: a decimal number (_decimal), inf, -inf or nan
    if text in ("inf", "-inf", "nan"):
        return float(text)
    return _decimal(text, "float label")


_LABEL_TYPES = {"int": _label_int, "str": _label_text, "bool": _label_bool, "float": _label_float}


def _read_file(f, read, undo=None, what="model file", caller="load_model"):
    # read(records) over a file (open, or a path). Any format error calls undo() and becomes
    # ValueError("<what> line N: ..."); I/O and memory errors pass through after undo().
    if isinstance(f, str):
        with open(f, "rb") as opened:
            return _read_file(opened, read, undo, what, caller)
    if not hasattr(f, "readline"):
        raise TypeError("%s: expected a file opened for reading or a path, got %s" % (caller, type(f).__name__))
    records = _Records(f)
    try:
        return read(records)
    except (ValueError, TypeError, RuntimeError, IndexError) as e:
        if undo:
            undo()
        raise ValueError("%s line %d: %s" % (what, records.lineno, str(e) or type(e).__name__))
    except BaseException:
        if undo:
            undo()
        raise
