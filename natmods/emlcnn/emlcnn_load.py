# Reads an mpyml-nets model file (docs/formats.md) into a network made by
# emlcnn.new(). Linked into emlcnn.mpy beside the C glue: this part checks the
# 16-byte file header and reads the payload into one bytearray; C checks the
# CRC and every record before the network is used, and reads weights in place;
# this part then reads the labels block (class labels, feature names).

MAGIC = b"MPYN"
FORMAT_VERSION = 2
HEADER_BYTES = 16
_NET_HEADER_BYTES = 52
_LAYER_BYTES = 48
_LABEL_TYPES = (None, "int", "str", "bool", "float")


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _u32(b, i):
    return _u16(b, i) | (_u16(b, i + 2) << 16)


def _read_header(f):
    try:
        header = f.read(HEADER_BYTES)
    except UnicodeError:
        header = ""
    if isinstance(header, str):
        raise TypeError("open the model file in binary mode ('rb')")
    n = len(header) if header else 0
    if n < HEADER_BYTES:
        raise ValueError("file truncated: the header needs %d bytes, got %d" % (HEADER_BYTES, n))
    if header[:4] != MAGIC:
        raise ValueError("bad magic %r: not an mpyml-nets model file (expected %r)" % (bytes(header[:4]), MAGIC))
    version = _u16(header, 4)
    if version < FORMAT_VERSION:
        raise ValueError("version %d is no longer read by this emlcnn (it reads version %d): export the model again"
                         % (version, FORMAT_VERSION))
    if version != FORMAT_VERSION:
        raise ValueError("format version %d is not supported (this emlcnn reads version %d)" % (version, FORMAT_VERSION))
    if _u16(header, 6) != HEADER_BYTES:
        raise ValueError("header size %d, expected %d" % (_u16(header, 6), HEADER_BYTES))
    return _u32(header, 8), header


def _label(kind, raw):
    try:
        text = str(raw, "utf-8")
    except UnicodeError:
        raise ValueError("labels block: a label is not valid UTF-8")
    if kind == "str":
        return text
    if kind == "bool":
        if text not in ("0", "1"):
            raise ValueError("labels block: bool label must be 0 or 1, got %r" % text[:20])
        return text == "1"
    if kind == "int":
        digits = text[1:] if text[:1] == "-" else text
        if not digits or any(c not in "0123456789" for c in digits):
            raise ValueError("labels block: int label: expected a decimal integer, got %r" % text[:20])
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise ValueError("labels block: float label: expected a number, got %r" % text[:20])


def _labels(p):
    """(classes, feature_names) of the checked payload p (docs/formats.md, labels block)."""
    n_layers, n_outputs = _u16(p, 2), _u32(p, 12)
    offset, size = _u32(p, 44), _u32(p, 48)
    if offset & 3 or offset < _NET_HEADER_BYTES + n_layers * _LAYER_BYTES or size < 12 or offset + size != len(p):
        raise ValueError("labels block: misplaced (it must end the payload, after the layer table)")
    class_type, n_classes, n_names = p[offset], _u32(p, offset + 4), _u32(p, offset + 8)
    if not 1 <= class_type <= 4 or p[offset + 1] != 2 or _u16(p, offset + 2):
        raise ValueError("labels block: unknown label type (1 int, 2 str, 3 bool, 4 float; feature names 2)")
    if n_classes and n_classes != (2 if p[1] == 2 and n_outputs == 1 else n_outputs):
        raise ValueError("labels block: %d classes for %d outputs" % (n_classes, n_outputs))
    if n_names > size // 2:
        raise ValueError("labels block: %d feature names cannot fit in %d bytes" % (n_names, size))
    pos, end = offset + 12, offset + size
    lists = []
    for kind, count in ((_LABEL_TYPES[class_type], n_classes), ("str", n_names)):
        values = []
        for _ in range(count):
            if end - pos < 2 or end - pos - 2 < _u16(p, pos):
                raise ValueError("labels block: truncated")
            n = _u16(p, pos)
            values.append(_label(kind, p[pos + 2:pos + 2 + n]))
            pos += 2 + n
        lists.append(values or None)
    if pos != end:
        raise ValueError("labels block: %d bytes after the last label" % (end - pos))
    return lists


def _remaining(f):
    """Bytes from the position of `f` to its end, or None for a stream that cannot seek."""
    try:
        here = f.tell()
        end = f.seek(0, 2)
        if end is None:  # some file objects return None from seek
            end = f.tell()
        f.seek(here)
    except (AttributeError, OSError):
        return None
    return end - here


def _open(f):
    if isinstance(f, str):
        return open(f, "rb")
    if not hasattr(f, "read"):
        raise TypeError("expected a file opened with 'rb' or a path, got %s" % type(f).__name__)
    return None


def arena_bytes(f):
    """The arena size (bytes) the model file in `f` (an open binary file or a path) needs."""
    opened = _open(f)
    if opened:
        with opened:
            return arena_bytes(opened)
    payload_bytes, _ = _read_header(f)
    head = f.read(20)
    if not head or len(head) < 20 or payload_bytes < 20:
        raise ValueError("file truncated: no network header")
    return _u32(head, 16)


def load_model(net, f):
    """Loads a model file (an open binary file, or a path) into `net` from emlcnn.new()."""
    if not isinstance(net, Net):
        raise TypeError("load_model: expected a network from emlcnn.new(), got %s" % type(net).__name__)
    opened = _open(f)
    if opened:
        with opened:
            return load_model(net, opened)
    net.unload()
    try:
        payload_bytes, header = _read_header(f)
        remaining = _remaining(f)
        if remaining is not None and remaining < payload_bytes:
            # before allocating: a corrupt size must not ask a fragmented heap for megabytes
            raise ValueError("file says %d bytes, the file has %d" % (HEADER_BYTES + payload_bytes, HEADER_BYTES + remaining))
        if payload_bytes > 0x7FFFFFF0:
            raise ValueError("payload size %d is not plausible" % payload_bytes)
        payload = bytearray(payload_bytes)
        view = memoryview(payload)
        got = 0
        while got < payload_bytes:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        if got < payload_bytes:
            raise ValueError("file truncated: the header announces a %d-byte payload, got %d" % (payload_bytes, got))
        net._load(payload, header)
        classes, names = _labels(payload)
        net._finish(classes, names)
    except (ValueError, TypeError) as e:
        net.unload()
        raise ValueError("model file: %s" % e)
