"""NumPy .npy files as array.array, for MicroPython and CPython alike (no numpy needed).

Same calling forms as micropython-npyfile:
    shape, values = npyfile.load(f)
    npyfile.save(f, values, shape=None)
    with npyfile.Reader(f) as r: r.shape, r.typecode, r.itemsize, r.read_data_chunks(n)
    with npyfile.Writer(f, shape, typecode) as w: w.write_values(values)
`f` is a path or an open binary file. `load` returns items in C order (row by row),
transposing a Fortran-order file (`np.save` of `DataFrame.to_numpy()`, `np.asfortranarray`).
`read_data_chunks` streams in file order; for a Fortran-order array of two or more
dimensions (above 1) that is column by column, so it raises ValueError unless called
with file_order=True.

The header must be the dict numpy writes (keys 'descr', 'fortran_order', 'shape'; spaces and
newlines free), in ASCII, format version 1.0, 2.0 or 3.0: what numpy refuses raises ValueError.
A truncated file raises ValueError naming how many items the header promised and how
many are there; with allow_truncated=True the reader returns what is there instead
(`r.n_items` says how many, whole items only).
"""

import array
import struct

MAGIC = b"\x93NUMPY"

# numpy descr (without byte order) -> array typecode; itemsize is fixed by the .npy format
_DESCR_TYPECODES = {
    "i1": "b", "u1": "B", "b1": "B",
    "i2": "h", "u2": "H",
    "i4": "i", "u4": "I",
    "i8": "q", "u8": "Q",
    "f4": "f", "f8": "d",
}
_ITEMSIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}
_TYPECODE_DESCRS = {"b": "|i1", "B": "|u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4",
                    "q": "<i8", "Q": "<u8", "f": "<f4", "d": "<f8"}

_HEADER_ALIGN = 64  # numpy >= 1.9 aligns the data start to 64 bytes
_MAX_BYTES = (1 << 63) - 1
_MAX_HEADER = 10000  # numpy.load refuses longer headers by default (max_header_size)


def array_typecode(values):
    code = getattr(values, "typecode", None)
    if code is None:  # MicroPython's array has no .typecode: its repr is "array('h', ...)"
        text = repr(values)
        if not text.startswith("array('"):
            raise TypeError("expected an array.array, got %s" % type(values).__name__)
        code = text[7]
    return code


def compute_items(shape):
    total = 1
    for d in shape:
        total *= d
    return total


def _name(f):
    if isinstance(f, str):
        return f
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else "<file>"


def _read_full(f, n):
    """Up to n bytes: fewer only at the end of the file (a pipe may return less per read)."""
    data = f.read(n)
    if data is None:
        data = b""
    while 0 < len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _field(header, key, where):
    """The text of one value of the header's dict literal (a tuple value up to its closing parenthesis)."""
    start = header.find("'%s':" % key)
    if start < 0:
        raise ValueError("%s: .npy header has no '%s': %s" % (where, key, header))
    i = start + len(key) + 3
    while i < len(header) and header[i] == " ":
        i += 1
    if header[i:i + 1] == "(":
        end = header.find(")", i) + 1
    else:
        end = len(header)
        for stop in ",}":
            p = header.find(stop, i)
            if 0 <= p < end:
                end = p
    if end <= i:
        raise ValueError("%s: .npy header has an unterminated '%s': %s" % (where, key, header))
    return header[i:end].strip()


def _parse_shape(text, where):
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError("%s: .npy shape is not a tuple: %s" % (where, text))
    shape = []
    for part in text[1:-1].split(","):
        part = part.strip()
        if part:
            if part.endswith("L"):
                part = part[:-1]
            try:
                d = int(part)
            except ValueError:
                raise ValueError("%s: .npy shape has a non-integer dimension %r" % (where, part))
            if d < 0:
                raise ValueError("%s: .npy shape has a negative dimension %d" % (where, d))
            shape.append(d)

    return tuple(shape)


def _shape_text(shape):
    """A shape as a tuple literal without spaces: (), (3,), (2,3)."""
    if len(shape) == 1:
        return "(%d,)" % shape[0]
    return "(" + ",".join(str(d) for d in shape) + ")"


def _without_spaces(text):
    return text.replace(" ", "").replace("\n", "")


class Reader:
    """Reads a .npy file's header at once, its data on demand (read_data_chunks)."""

    def __init__(self, filelike, allow_truncated=False):
        self._own = isinstance(filelike, str)
        self.file = open(filelike, "rb") if self._own else filelike
        self.name = _name(filelike)
        try:
            self._size = self._file_size()
            self._read_header()
            self._check_size(allow_truncated)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self._own and self.file is not None:
            self.file.close()
        self.file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()

    def _read_exactly(self, n, what):
        data = _read_full(self.file, n)
        if len(data) < n:
            got = len(data)
            if what == "magic" and got == 0:
                raise ValueError("%s: not a .npy file: it is empty" % self.name)
            raise ValueError("%s: not a .npy file: file ends inside the %s (%d of %d bytes)" % (self.name, what, got, n))
        return data

    def _read_header(self):
        prefix = self._read_exactly(8, "magic")
        if prefix[:6] != MAGIC:
            raise ValueError("%s: not a .npy file: starts with %r, expected %r" % (self.name, bytes(prefix[:6]), MAGIC))
        major, minor = prefix[6], prefix[7]
        if major not in (1, 2, 3) or minor != 0:
            raise ValueError("%s: .npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)" % (self.name, major, minor))
        if major == 1:
            header_len = struct.unpack("<H", self._read_exactly(2, "header length"))[0]
            self.data_start = 10 + header_len
        else:
            header_len = struct.unpack("<I", self._read_exactly(4, "header length"))[0]
            self.data_start = 12 + header_len
        self.version = (major, minor)
        # before reading (and allocating) the header: a corrupt length may ask for gigabytes
        if self._size is not None and self.data_start > self._size:
            got = max(self._size - (self.data_start - header_len), 0)
            raise ValueError("%s: not a .npy file: file ends inside the header (%d of %d bytes)" % (self.name, got, header_len))
        if header_len > _MAX_HEADER:
            raise ValueError("%s: .npy header length %d is not supported (at most %d)" % (self.name, header_len, _MAX_HEADER))
        header = self._read_exactly(header_len, "header")
        for b in header:
            if b > 126:  # numpy writes ASCII headers for the numeric dtypes read here
                raise ValueError("%s: .npy header is not ASCII text (byte 0x%02x)" % (self.name, b))
        header = header.decode().rstrip(" \t\n\r\x0c")  # Python's whitespace after the dict literal
        if not (header.startswith("{") and header.endswith("}")):
            raise ValueError("%s: .npy header is not a dict: %s" % (self.name, header))
        descr = _field(header, "descr", self.name)
        if len(descr) < 2 or descr[0] not in "'\"" or descr[-1] != descr[0]:
            raise ValueError("%s: .npy dtype %s is not supported (only simple numeric dtypes are)" % (self.name, descr))
        descr = descr[1:-1]
        if not descr:
            raise ValueError("%s: .npy header has an empty 'descr' (the dtype)" % self.name)
        order, kind = descr[0], descr[1:]
        if order == ">" and kind not in ("i1", "u1", "b1"):
            raise ValueError("%s: .npy dtype %r is big-endian; only little-endian is supported" % (self.name, descr))
        if order not in "<|>=" or kind not in _DESCR_TYPECODES:
            raise ValueError("%s: .npy dtype %r is not supported; supported: %s" % (
                self.name, descr, " ".join(sorted(_DESCR_TYPECODES))))
        self.descr = descr
        self.typecode = _DESCR_TYPECODES[kind]
        self.itemsize = _ITEMSIZES[self.typecode]
        fortran = _field(header, "fortran_order", self.name)
        if fortran not in ("True", "False"):
            raise ValueError("%s: .npy fortran_order is %r, expected True or False" % (self.name, fortran))
        self.fortran_order = fortran == "True"
        self.shape = _parse_shape(_field(header, "shape", self.name), self.name)
        size = self.itemsize
        for d in self.shape:
            size *= d or 1
        if size > _MAX_BYTES:  # numpy's limit: the bytes of the nonzero dimensions fit an int64
            raise ValueError("%s: .npy shape %s of %r is too large" % (self.name, self.shape, descr))
        # The dict numpy writes, up to spaces and newlines: numpy refuses other keys and other shape texts.
        canonical = "{'descr':'%s','fortran_order':%s,'shape':%s" % (descr, fortran, _shape_text(self.shape))
        if _without_spaces(header) not in (canonical + ",}", canonical + "}"):
            raise ValueError("%s: .npy header is not the dict numpy writes: %s" % (self.name, header))
        self.n_items_promised = compute_items(self.shape)
        # file order differs from C order only with two or more dimensions above 1
        self.column_major = self.fortran_order and sum(1 for d in self.shape if d > 1) > 1

    def _file_size(self):
        try:
            here = self.file.tell()
            end = self.file.seek(0, 2)
            if end is None:  # some file objects return None from seek
                end = self.file.tell()
            self.file.seek(here)
            return end
        except (AttributeError, OSError):
            return None

    def _check_size(self, allow_truncated):
        size = self._size
        self.n_items = self.n_items_promised
        self.truncated = False
        if size is None:
            self._allow_truncated = allow_truncated  # checked while reading
            return
        data_bytes = size - self.data_start
        present = data_bytes // self.itemsize
        if present < self.n_items_promised:
            self.truncated = True
            if not allow_truncated:
                raise ValueError(self._truncated_message(present, data_bytes % self.itemsize))
            self.n_items = present
        self._allow_truncated = allow_truncated

    def _truncated_message(self, present, partial_bytes):
        message = "%s: truncated .npy file: header promises %d items %s of %r, file holds %d" % (
            self.name, self.n_items_promised, self.shape, self.descr, present)
        if len(self.shape) > 1 and not self.column_major:
            row = compute_items(self.shape[1:])
            message += " (%d complete rows of %d)" % (present // row, row)
        if partial_bytes:
            message += " and %d bytes of a partial item" % partial_bytes
        return message + " (pass allow_truncated=True to read what is there)"

    def read_data_chunks(self, chunksize, file_order=False):
        """Yields the data as arrays of at most `chunksize` items (the last may be shorter), in file order.

        Raises ValueError for a Fortran-order array whose file order is not its C order, unless
        file_order=True (then items come column by column); npyfile.load() returns C order."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1, got %d" % chunksize)
        if self.column_major and not file_order:
            raise ValueError("%s: Fortran-order array of shape %s: its file order is column by column; "
                             "npyfile.load() returns it in C order, or pass file_order=True to stream columns"
                             % (self.name, self.shape))
        if self.file is None:
            raise ValueError("%s: reader is closed" % self.name)
        try:
            self.file.seek(self.data_start)
        except (AttributeError, OSError):
            pass  # a pipe or socket: the data follows the header just read
        remaining = self.n_items
        read = 0
        while remaining > 0:
            n = min(chunksize, remaining)
            data = _read_full(self.file, n * self.itemsize)
            got = len(data) // self.itemsize
            if got < n:  # only reached when the file size was unknown up front
                if not self._allow_truncated:
                    raise ValueError(self._truncated_message(read + got, len(data) % self.itemsize))
                remaining = 0
                if got == 0:
                    break
                data = data[:got * self.itemsize]
            else:
                remaining -= n
            read += got
            yield array.array(self.typecode, data)


class Writer:
    """Writes the header at once, then values; `shape[0]` may be None for a recording of unknown length.

    On close, a first dimension of None is filled in with the rows written (the file must be seekable);
    a fixed shape that was not filled raises ValueError.
    """

    def __init__(self, filelike, shape, typecode):
        if typecode not in _TYPECODE_DESCRS:
            raise ValueError("typecode %r has no .npy dtype; supported: %s" % (typecode, " ".join(sorted(_TYPECODE_DESCRS))))
        shape = tuple(shape)
        if not shape:
            raise ValueError("shape must have at least one dimension")
        for i, d in enumerate(shape):
            if d is None and i == 0:
                continue
            if not isinstance(d, int) or d < 0:
                raise ValueError("shape %r: dimensions must be non-negative integers (only the first may be None)" % (shape,))
        self._own = isinstance(filelike, str)
        self.file = open(filelike, "wb") if self._own else filelike
        self.name = _name(filelike)
        self.typecode = typecode
        self.itemsize = _ITEMSIZES[typecode]
        self.shape = shape
        self.n_written = 0
        self._row_items = compute_items(shape[1:])
        self._write_header(shape[0] if shape[0] is not None else 0)

    def _write_header(self, first):
        shape_text = ", ".join(str(d) for d in (first,) + self.shape[1:])
        if len(self.shape) == 1:
            shape_text += ","
        header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (_TYPECODE_DESCRS[self.typecode], shape_text)
        # room for a first dimension of up to 20 digits, so the header can be rewritten in place
        total = 10 + len(header) + 1 + (20 if self.shape[0] is None else 0)
        padded = (total + _HEADER_ALIGN - 1) // _HEADER_ALIGN * _HEADER_ALIGN
        header = header + " " * (padded - 10 - len(header) - 1) + "\n"
        self.file.write(MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))

    def write_values(self, values):
        code = array_typecode(values)
        if code != self.typecode:
            raise TypeError("%s: write_values expected array(%r), got typecode %r" % (self.name, self.typecode, code))
        if self.shape[0] is not None and self.n_written + len(values) > compute_items(self.shape):
            raise ValueError("%s: writing %d more items exceeds shape %s (%d items, %d written)" % (
                self.name, len(values), self.shape, compute_items(self.shape), self.n_written))
        self.file.write(values)
        self.n_written += len(values)

    def close(self):
        if self.file is None:
            return
        try:
            if self.shape[0] is None:
                if self._row_items and self.n_written % self._row_items:
                    raise ValueError("%s: %d items written is not a whole number of rows of %d" % (
                        self.name, self.n_written, self._row_items))
                rows = self.n_written // self._row_items if self._row_items else 0
                end = self.file.tell()
                self.file.seek(0)
                self._write_header(rows)
                self.file.seek(end)
            elif self.n_written != compute_items(self.shape):
                raise ValueError("%s: shape %s promises %d items, %d were written" % (
                    self.name, self.shape, compute_items(self.shape), self.n_written))
        finally:
            if self._own:
                self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        if exc_type is None:
            self.close()
        else:
            if self._own and self.file is not None:
                self.file.close()
            self.file = None


def load(filelike, allow_truncated=False):
    """Returns (shape, array) of a whole .npy file, items in C order (a Fortran-order file is transposed).

    A truncated Fortran-order array (two or more dimensions above 1) raises ValueError even with
    allow_truncated=True: its rows are incomplete."""
    with Reader(filelike, allow_truncated=allow_truncated) as reader:
        if reader.truncated and reader.column_major:
            raise ValueError("%s: truncated Fortran-order array of shape %s: its rows cannot be rebuilt "
                             "(%d of %d items present)" % (reader.name, reader.shape, reader.n_items, reader.n_items_promised))
        values = array.array(reader.typecode)
        for chunk in reader.read_data_chunks(max(reader.n_items, 1), file_order=True):
            values = chunk if not len(values) else values + chunk
        shape = reader.shape
        if reader.truncated:
            shape = _present_shape(reader)
        elif reader.column_major:
            values = _fortran_to_c(values, shape, reader.typecode, reader.itemsize)
    return shape, values


def _fortran_to_c(values, shape, typecode, itemsize):
    """The items of a column-major array of `shape`, rearranged row by row (C order)."""
    strides = []
    step = 1
    for d in shape:
        strides.append(step)
        step *= d
    n = compute_items(shape)
    out = array.array(typecode, bytes(n * itemsize))
    index = [0] * len(shape)
    offset = 0
    last = len(shape) - 1
    for i in range(n):
        out[i] = values[offset]
        k = last  # next C-order index: the last axis moves fastest
        while k >= 0:
            index[k] += 1
            offset += strides[k]
            if index[k] < shape[k]:
                break
            offset -= strides[k] * shape[k]
            index[k] = 0
            k -= 1
    return out


def _present_shape(reader):
    if len(reader.shape) > 1 and not reader.column_major:
        row = compute_items(reader.shape[1:])
        if row and reader.n_items % row == 0:
            return (reader.n_items // row,) + reader.shape[1:]
    return (reader.n_items,)


def save(filelike, values, shape=None):
    """Writes an array as a .npy file of its typecode's dtype; shape defaults to 1-D."""
    if shape is None:
        shape = (len(values),)
    if compute_items(shape) != len(values):
        raise ValueError("shape %s holds %d items, the array has %d" % (tuple(shape), compute_items(shape), len(values)))
    with Writer(filelike, shape, array_typecode(values)) as writer:
        writer.write_values(values)
