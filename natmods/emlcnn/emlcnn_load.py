# Reads an mpyml-nets model file (docs/formats.md) into a network made by
# emlcnn.new(). Linked into emlcnn.mpy beside the C glue: this part checks the
# 16-byte file header and reads the payload into one bytearray; C checks the
# CRC and every record before the network is used, and reads weights in place.

MAGIC = b"MPYN"
FORMAT_VERSION = 1
HEADER_BYTES = 16
_ARENA_OFFSET = HEADER_BYTES + 16  # arena_bytes in the network header


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
    if version != FORMAT_VERSION:
        raise ValueError("format version %d is not supported (this emlcnn reads version %d)" % (version, FORMAT_VERSION))
    if _u16(header, 6) != HEADER_BYTES:
        raise ValueError("header size %d, expected %d" % (_u16(header, 6), HEADER_BYTES))
    return _u32(header, 8), header


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
    except (ValueError, TypeError) as e:
        net.unload()
        raise ValueError("model file: %s" % e)
