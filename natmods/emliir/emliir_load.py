# Reads the mpyml-iir text format (docs/formats.md) into a filter. Linked into
# emliir.mpy beside the C glue, which validates the coefficients.
from array import array

FORMAT = "mpyml-iir"
FORMAT_VERSION = 1


def _lines(f):
    # (line number, text) of the lines that are neither blank nor comments
    lineno = 0
    while True:
        line = f.readline()
        if not line:
            return
        lineno += 1
        if isinstance(line, bytes):
            line = line.decode()
        line = line.strip()
        if line and line[0] != "#":
            yield lineno, line


def _expect(records, key, what):
    try:
        lineno, line = next(records)
    except StopIteration:
        raise ValueError("file ends here: expected %s" % what) from None
    fields = line.split(",")
    if fields[0] != key or len(fields) != (1 if key == "stages" else 2):
        raise ValueError("line %d: expected %s, got '%s'" % (lineno, what, line[:40]))
    return lineno, fields[-1]


def _read(f):
    records = _lines(f)
    lineno, version = _expect(records, FORMAT, "'%s,%d'" % (FORMAT, FORMAT_VERSION))
    if version != str(FORMAT_VERSION):
        raise ValueError("line %d: format version %s is not supported (this emliir reads version %d)"
                         % (lineno, version[:10], FORMAT_VERSION))
    lineno, dtype = _expect(records, "dtype", "'dtype,float32' or 'dtype,int16'")
    if dtype not in ("float32", "int16"):
        raise ValueError("line %d: unknown dtype '%s' (expected float32 or int16)" % (lineno, dtype[:20]))
    lineno, n_stages = _expect(records, "n_stages", "'n_stages,<count>'")
    n_stages = int(n_stages)
    if not 1 <= n_stages <= 65535:
        raise ValueError("line %d: n_stages must be 1..65535, got %d" % (lineno, n_stages))
    _expect(records, "stages", "the 'stages' section line")
    float32 = dtype == "float32"
    values = array("I" if float32 else "h", bytes((4 if float32 else 2) * 6 * n_stages))
    stage_lines = []
    for lineno, line in records:
        stage = len(stage_lines)
        if stage == n_stages:
            raise ValueError("line %d: more stages than n_stages=%d" % (lineno, n_stages))
        fields = line.split(",")
        if len(fields) != 6:
            raise ValueError("line %d: a stage needs 6 numbers (b0,b1,b2,a0,a1,a2), got %d" % (lineno, len(fields)))
        for i in range(6):
            values[6 * stage + i] = _number(fields[i], float32, lineno)
        stage_lines.append(lineno)
    if len(stage_lines) != n_stages:
        raise ValueError("file ends here: %d of n_stages=%d stages read" % (len(stage_lines), n_stages))
    try:
        if float32:
            return new(array("f", bytes(values)))
        return new_q15(values)
    except ValueError as e:
        # The glue names the stage ("sos stage 2: ..."); the file's reader names its line.
        message = str(e)
        stage = int(message.split(":")[0].split()[-1])
        raise ValueError("line %d: %s" % (stage_lines[stage], message.split(": ", 1)[1])) from None


def _number(text, float32, lineno):
    try:
        if float32:
            if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise ValueError
            return int(text, 16)
        value = int(text)
    except ValueError:
        raise ValueError("line %d: expected %s, got '%s'" % (
            lineno, "8 hex digits (float32 bits)" if float32 else "an integer", text[:20])) from None
    if not -32768 <= value <= 32767:
        raise ValueError("line %d: %d is out of int16 range" % (lineno, value))
    return value


def load(f):
    """A filter from a coefficients file written by mpyml.iir.save (an open file, or a path)."""
    if isinstance(f, str):
        with open(f) as opened:
            return load(opened)
    if not hasattr(f, "readline"):
        raise TypeError("load: expected a file opened for reading or a path, got %s" % type(f).__name__)
    try:
        return _read(f)
    except ValueError as e:
        raise ValueError("filter file: %s" % e) from None
