// MicroPython-side loading of pipeline step records (mpyml_linear.h) for the natmods that
// read them (emllinear, emlneighbors, emltrees). Include after mpyml_glue.h and
// mpyml_records_glue.h.
#ifndef MPYML_STEPS_GLUE_H
#define MPYML_STEPS_GLUE_H

#include "mpyml_linear.h"

// The step records of a file (docs/formats.md, mpyml-linear) read by the C record reader
// (mpyml_records_glue.h, included before this file), into a model whose shape is set.

// One value of a step row: float32 bits, or a select index.
static void steps_take_value(void *ctx, const mpyml_field_t *field, uint32_t index) {
    mpyml_linear_t *m = ctx;
    (void)index;
    uint32_t value;
    if (m->steps[m->steps_added - 1].kind == MPYML_STEP_SELECT) {
        value = (uint32_t)records_int_in(field, 0, MPYML_LINEAR_MAX_WIDTH, "a select index");
    } else {
        value = 0;
        mpyml_check(mpyml_parse_hex32((const char *)field->text, field->len > field->n_kept ? 0 : field->len, &value));
    }
    mpyml_check(mpyml_linear_add_value(m, value));
}

// A row of n values: "<what> needs n values, got m" when it has another width.
static void steps_row(mpyml_records_t *r, mpyml_linear_t *m, uint32_t n, const char *what, intptr_t what_arg) {
    records_what_t w = records_what(what, what_arg);
    uint32_t got = records_row(r, w, steps_take_value, m, n, ROW_END_FIELD);
    if (got != n) {
        records_fail("%W needs %d values, got %d", w, (int)n, (int)got);
    }
}

static void records_steps(mpyml_records_t *r, mpyml_linear_t *m, uint32_t n_steps) {
    for (uint32_t s = 0; s < n_steps; s++) {
        mpyml_field_t fields[4];
        records_fields(r, 4, records_what("a 'step,<kind>,<n_in>,<n_out>' line", 0), fields, 4);
        uint32_t kind = mpyml_field_is(&fields[1], "affine") ? MPYML_STEP_AFFINE
            : mpyml_field_is(&fields[1], "select") ? MPYML_STEP_SELECT
            : mpyml_field_is(&fields[1], "matrix") ? MPYML_STEP_MATRIX : 0;
        if (!mpyml_field_is(&fields[0], "step") || kind == 0) {
            records_fail("expected 'step,<affine|select|matrix>,<n_in>,<n_out>', got '%H'", &r->line);
        }
        uint32_t n_in = (uint32_t)records_int_in(&fields[2], 1, MPYML_LINEAR_MAX_WIDTH, "a step's n_in");
        uint32_t n_out = (uint32_t)records_int_in(&fields[3], 1, MPYML_LINEAR_MAX_WIDTH, "a step's n_out");
        mpyml_check(mpyml_linear_add_step(m, kind, n_in, n_out));
        if (kind == MPYML_STEP_SELECT) {
            steps_row(r, m, n_out, "the select step's indices", 0);
        } else if (kind == MPYML_STEP_AFFINE) {
            steps_row(r, m, n_out, "the affine step's scales", 0);
            steps_row(r, m, n_out, "the affine step's shifts", 0);
        } else {
            for (uint32_t i = 0; i < n_out; i++) {
                steps_row(r, m, n_in, "matrix row %d", (intptr_t)i);
            }
            steps_row(r, m, n_out, "the matrix step's biases", 0);
        }
    }
}
// A steps section (mpyml-neighbors, mpyml-trees): its line 'steps,<n_input_features>,<n_steps>,
// <n_values>,<max_width>', already read by the caller (its first 5 fields and their number), then
// the step records. begin(ctx, shape) allocates the steps for the checked header (n_outputs: the
// model's width) and returns them. Returns n_input_features.
static inline uint32_t records_steps_section(mpyml_records_t *r, const mpyml_field_t *fields, uint32_t n_fields, uint32_t n_outputs,
    mpyml_linear_t *(*begin)(void *ctx, const mpyml_linear_shape_t *shape), void *ctx) {
    if (!mpyml_field_is(&fields[0], "steps") || n_fields != 5) {
        records_fail("expected 'steps,<n_input_features>,<n_steps>,<n_values>,<max_width>', got '%H'", &r->line);
    }
    mpyml_linear_shape_t shape;
    shape.kind = MPYML_LINEAR_TRANSFORMER;
    shape.proba = MPYML_PROBA_NONE;
    shape.n_outputs = n_outputs;
    shape.n_features = (uint32_t)records_int_in(&fields[1], 1, MPYML_LINEAR_MAX_WIDTH, "n_input_features");
    shape.n_steps = (uint32_t)records_int_in(&fields[2], 1, MPYML_LINEAR_MAX_STEPS, "n_steps");
    shape.n_values = (uint32_t)records_int_in(&fields[3], 0, 0x3fffffff, "n_values");
    shape.max_width = (uint32_t)records_int_in(&fields[4], 1, MPYML_LINEAR_MAX_WIDTH, "max_width");
    records_check_size(r, shape.n_values, 2, "step values");
    records_steps(r, begin(ctx, &shape), shape.n_steps);
    return shape.n_features;
}
#endif // MPYML_STEPS_GLUE_H
