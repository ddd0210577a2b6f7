// MicroPython-side loading of pipeline step records (mpyml_linear.h) for the
// natmods that read them (emllinear, emltrees v2): the glue halves of the
// loader calls that natmods/common/mpyml_steps.py makes. Include after mpyml_glue.h.
#ifndef MPYML_STEPS_GLUE_H
#define MPYML_STEPS_GLUE_H

#include "mpyml_linear.h"

// model._step(kind, n_in, n_out): args are the three numbers.
static void mpyml_steps_add_step(mpyml_linear_t *m, const mp_obj_t *args) {
    mp_int_t v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = mpyml_get_int(args[i], 0, (mp_int_t)MPYML_LINEAR_MAX_WIDTH, i == 0 ? MPYML_ERR_LIN_STEP_KIND : MPYML_ERR_LIN_STEP_WIDTH);
    }
    mpyml_check(mpyml_linear_add_step(m, (uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]));
}

// model._floats(line): comma-separated float32 bits of the current step, 8 hex digits each.
static void mpyml_steps_add_floats(mpyml_linear_t *m, mp_obj_t line_in) {
    size_t len;
    const char *text = mp_obj_str_get_data(line_in, &len);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == ',') {
            uint32_t bits = 0;
            mpyml_check(mpyml_parse_hex32(text + start, i - start, &bits));
            mpyml_check(mpyml_linear_add_value(m, bits));
            start = i + 1;
        }
    }
}

// model._index(i): one column index of a select step.
static void mpyml_steps_add_index(mpyml_linear_t *m, mp_obj_t index_in) {
    mp_int_t index = mpyml_get_int(index_in, 0, (mp_int_t)MPYML_LINEAR_MAX_WIDTH, MPYML_ERR_LIN_INDEX);
    mpyml_check(mpyml_linear_add_value(m, (uint32_t)index));
}

#endif // MPYML_STEPS_GLUE_H
