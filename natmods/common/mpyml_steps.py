# Step records of pipeline steps (docs/formats.md, mpyml-linear): read by
# emllinear and by emltrees (format version 2), linked into both beside their
# loaders. `records` is the loader's line reader; `model` takes each record
# (_step, _floats, _index) and validates it in C.
_STEPS = {"affine": 1, "select": 2, "matrix": 3}


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
        kind, n_in, n_out = fields[1], int(fields[2]), int(fields[3])
        model._step(_STEPS[kind], n_in, n_out)
        if kind == "select":
            for index in _step_row(records, n_out, "the select step's indices"):
                model._index(int(index))
        elif kind == "affine":
            model._floats(",".join(_step_row(records, n_out, "the affine step's scales")))
            model._floats(",".join(_step_row(records, n_out, "the affine step's shifts")))
        else:
            for i in range(n_out):
                model._floats(",".join(_step_row(records, n_in, "matrix row %d" % i)))
            model._floats(",".join(_step_row(records, n_out, "the matrix step's biases")))
