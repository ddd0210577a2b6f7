# Step records of pipeline steps (docs/formats.md, mpyml-linear): read by
# emllinear, emlneighbors and emltrees (the formats with a steps section),
# linked into each beside its loader. `records` is the loader's line reader
# (mpyml_records.py); `model` takes each record (_step, _floats, _index) and
# validates it in C. Every integer is range-checked here, on the full Python
# int, before C narrows it.
_STEPS = {"affine": 1, "select": 2, "matrix": 3}
_MAX_WIDTH = 65535
_MAX_STEPS = 255
_MAX_VALUES = 0x3FFFFFFF


def _steps_header(records, n_steps, n_values, max_width):
    # The three numbers of a steps header (text), checked before anything is allocated for them:
    # n_values against what the file can hold (each value takes at least 2 bytes, '0,').
    n_steps = _int_in(n_steps, 1, _MAX_STEPS, "n_steps")
    n_values = _int_in(n_values, 0, _MAX_VALUES, "n_values")
    max_width = _int_in(max_width, 1, _MAX_WIDTH, "max_width")
    records.check_size(n_values, 2, "step values")
    return n_steps, n_values, max_width


def _steps_section(model, records, fields=None):
    # A steps section of mpyml-neighbors and mpyml-trees: the line
    # 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>' (its fields when the caller has
    # read it already), model._steps(...) with the checked numbers, then the step records.
    if fields is None:
        fields = records.fields(5, "'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>'")
    if fields[0] != "steps" or len(fields) != 5:
        raise ValueError("expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>', got '%s'"
                         % ",".join(fields)[:40])
    n_input_features = _int_in(fields[1], 1, _MAX_WIDTH, "n_input_features")
    n_steps, n_values, max_width = _steps_header(records, fields[2], fields[3], fields[4])
    model._steps(n_input_features, n_steps, n_values, max_width)
    _read_steps(model, records, n_steps)


def _step_row(records, n_values, what):
    fields = records.fields(0, what)
    if len(fields) != n_values:
        raise ValueError("%s needs %d values, got %d" % (what, n_values, len(fields)))
    return fields


def _read_steps(model, records, n_steps):
    for _ in range(n_steps):
        fields = records.fields(4, "a 'step,<kind>,<n_in>,<n_out>' line")
        if fields[0] != "step" or fields[1] not in _STEPS:
            raise ValueError("expected 'step,<affine|select|matrix>,<n_in>,<n_out>', got '%s'" % ",".join(fields)[:40])
        kind = fields[1]
        n_in = _int_in(fields[2], 1, _MAX_WIDTH, "a step's n_in")
        n_out = _int_in(fields[3], 1, _MAX_WIDTH, "a step's n_out")
        model._step(_STEPS[kind], n_in, n_out)
        if kind == "select":
            for index in _step_row(records, n_out, "the select step's indices"):
                model._index(_int_in(index, 0, _MAX_WIDTH, "a select index"))
        elif kind == "affine":
            model._floats(",".join(_step_row(records, n_out, "the affine step's scales")))
            model._floats(",".join(_step_row(records, n_out, "the affine step's shifts")))
        else:
            for i in range(n_out):
                model._floats(",".join(_step_row(records, n_in, "matrix row %d" % i)))
            model._floats(",".join(_step_row(records, n_out, "the matrix step's biases")))
