# Reads the mpyml-iir text format (docs/formats.md) into a filter. Linked into
# emliir.mpy beside the C glue, which validates the coefficients, and
# ../common/mpyml_records.py (_Records).
from array import array

FORMAT = "mpyml-iir"
FORMAT_VERSION = 1


def _read(records):
    version = records.value(FORMAT)
    if version != str(FORMAT_VERSION):
        raise ValueError("format version %s is not supported (this emliir reads version %d)" % (version[:10], FORMAT_VERSION))
    float32 = records.choice("dtype", ("float32", "int16")) == "float32"
    n_stages = records.count("n_stages")
    if not 1 <= n_stages <= 65535:
        raise ValueError("n_stages must be 1..65535, got %d" % n_stages)
    records.section("stages")
    values = array("I" if float32 else "h", bytes((4 if float32 else 2) * 6 * n_stages))
    stage_lines = []
    for stage in range(n_stages):
        line = records.line()
        if line is None:
            raise ValueError("file ends here: %d of n_stages=%d stages read" % (stage, n_stages))
        fields = line.split(",")
        if len(fields) != 6:
            raise ValueError("a stage needs 6 numbers (b0,b1,b2,a0,a1,a2), got %d" % len(fields))
        for i in range(6):
            values[6 * stage + i] = _number(fields[i], float32)
        stage_lines.append(records.lineno)
    if records.line() is not None:
        raise ValueError("more stages than n_stages=%d" % n_stages)
    try:
        if float32:
            return new(array("f", bytes(values)))
        return new_q15(values)
    except ValueError as e:
        # The glue names the stage ("sos stage 2: ..."); the file's reader names its line.
        message = str(e)
        records.lineno = stage_lines[int(message.split(":")[0].split()[-1])]
        raise ValueError(message.split(": ", 1)[1]) from None


def _number(text, float32):
    try:
        if float32:
            if len(text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in text):
                raise ValueError
            return int(text, 16)
        value = int(text)
    except ValueError:
        raise ValueError("expected %s, got '%s'" % ("8 hex digits (float32 bits)" if float32 else "an integer", text[:20])) from None
    if not -32768 <= value <= 32767:
        raise ValueError("%d is out of int16 range" % value)
    return value


def load(f):
    """A filter from a coefficients file written by mpyml.iir.save (an open file, or a path)."""
    return _read_file(f, _read, what="filter file", caller="load")
