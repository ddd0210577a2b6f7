# Line records of mpyml's text model formats (docs/formats.md), read one line
# at a time. Linked into every natmod whose loader reads a text format, beside
# that loader; `lineno` names the line an error is about.


class _Records:
    def __init__(self, f):
        self.f = f
        self.lineno = 0

    def line(self):
        # The next line that is neither blank nor a comment, or None at the end.
        while True:
            line = self.f.readline()
            if not line:
                return None
            self.lineno += 1
            if isinstance(line, bytes):
                line = line.decode()
            line = line.strip()
            if line and line[0] != "#":
                return line

    def fields(self, n_fields, what):
        # The next line's comma-separated fields: exactly n_fields, or any number when n_fields is 0.
        line = self.line()
        if line is None:
            raise ValueError("file ends here: expected %s" % what)
        fields = line.split(",")
        if n_fields and len(fields) != n_fields:
            raise ValueError("%s needs %d fields, got %d: '%s'" % (what, n_fields, len(fields), line[:40]))
        return fields

    def value(self, key):
        fields = self.fields(2, "'%s,<value>'" % key)
        if fields[0] != key:
            raise ValueError("expected '%s,<value>', got '%s'" % (key, ",".join(fields)[:40]))
        return fields[1]

    def count(self, key):
        return int(self.value(key))

    def choice(self, key, choices):
        value = self.value(key)
        if value not in choices:
            raise ValueError("unknown %s '%s' (expected %s)" % (key, value[:20], " or ".join(sorted(choices))))
        return value

    def section(self, name):
        fields = self.fields(1, "the '%s' section line" % name)
        if fields[0] != name:
            raise ValueError("expected the '%s' section line, got '%s'" % (name, fields[0][:40]))

    def end(self, last):
        line = self.line()
        if line is not None:
            raise ValueError("unexpected line after the last %s: '%s'" % (last, line[:40]))


def _read_file(f, read, undo=None, what="model file", caller="load_model"):
    # read(records) over a file (open, or a path). Any format error calls undo() and becomes
    # ValueError("<what> line N: ..."); I/O and memory errors pass through after undo().
    if isinstance(f, str):
        with open(f) as opened:
            return _read_file(opened, read, undo, what, caller)
    if not hasattr(f, "readline"):
        raise TypeError("%s: expected a file opened for reading or a path, got %s" % (caller, type(f).__name__))
    records = _Records(f)
    try:
        return read(records)
    except (ValueError, TypeError, RuntimeError, IndexError) as e:
        if undo:
            undo()
        raise ValueError("%s line %d: %s" % (what, records.lineno, e))
    except BaseException:
        if undo:
            undo()
        raise
