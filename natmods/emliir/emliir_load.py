# Reads the mpyml-iir text format (docs/formats.md) into a filter. Linked into
# emliir.mpy beside the C glue, which validates the coefficients and provides
# _hex_row (float32 bits) and _crc32, and ../common/mpyml_records.py (_Records).
from array import array

FORMAT = "mpyml-iir"
FORMAT_VERSION = 2


def _read(records):
    version = records.value(FORMAT)
    if version != str(FORMAT_VERSION):
        if version == "1":
            raise ValueError("version 1 is no longer read by this emliir (it reads version %d): export the filter again"
                             % FORMAT_VERSION)
        raise ValueError("format version %s is not supported (this emliir reads version %d)" % (version[:10], FORMAT_VERSION))
    float32 = records.choice("dtype", ("float32", "int16")) == "float32"
    n_stages = records.count("n_stages", 1, 65535)
    records.check_size(n_stages, 12, "stages")  # a stage is at least '0,0,0,0,0,0\n'
    records.section("stages")
    values = array("I" if float32 else "h", bytes((4 if float32 else 2) * 6 * n_stages))
    row = array("I", bytes(24))
    stage_lines = []
    for stage in range(n_stages):
        fields = records.fields(6, "a stage (b0,b1,b2,a0,a1,a2)")
        if float32:
            _hex_row(",".join(fields), row)
            for i in range(6):
                values[6 * stage + i] = row[i]
        else:
            for i in range(6):
                values[6 * stage + i] = _int_in(fields[i], -32768, 32767, "a Q15 coefficient")
        stage_lines.append(records.lineno)
    records.end("stage")
    try:
        if float32:
            return new(array("f", bytes(values)))
        return new_q15(values)
    except ValueError as e:
        # The glue names the stage ("sos stage 2: ..."); the file's reader names its line.
        message = str(e)
        records.lineno = stage_lines[int(message.split(":")[0].split()[-1])]
        raise ValueError(message.split(": ", 1)[1]) from None


def load(f):
    """A filter from a coefficients file written by mpyml.iir.save (an open file, or a path)."""
    return _read_file(f, _read, what="filter file", caller="load")
