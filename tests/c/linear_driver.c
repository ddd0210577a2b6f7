// Host test driver for the portable step-chain core (natmods/common/mpyml_linear.h),
// run by tests/test_linear_core.py under ASan and UBSan.
//
// Reads commands from stdin, one a line, whitespace-separated (a test format):
//
//   shape KIND PROBA N_FEATURES N_OUTPUTS N_STEPS N_VALUES MAX_WIDTH
//                     mpyml_linear_check_shape; on success binds a malloc'd block of
//                     exactly mpyml_linear_bytes() bytes
//   step KIND N_IN N_OUT   mpyml_linear_add_step
//   f BITS...         mpyml_linear_add_value per 8-hex-digit float32 (stops at the first error)
//   i INDEX...        mpyml_linear_add_value per decimal select index
//   finish            mpyml_linear_check_complete
//   run BITS...       x (n_features float32 bits) in a malloc'd array of exactly n_features;
//                     prints the last step's output bits, then "| CLASS" for classifiers,
//                     then "| PROBA BITS..." when the model has probabilities
//
// Every command but run prints "ok" or "error CODE".
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpyml_linear.h"

#define MAX_TOKENS 70000

static char *tokens[MAX_TOKENS];
static mpyml_linear_t model;
static void *block = NULL;
static int ready = 0;

static size_t split(char *line) {
    size_t n = 0;
    for (char *t = strtok(line, " \t\r\n"); t != NULL && n < MAX_TOKENS; t = strtok(NULL, " \t\r\n")) {
        tokens[n++] = t;
    }
    return n;
}

static void report(mpyml_err_t err) {
    if (err == MPYML_OK) {
        printf("ok\n");
    } else {
        printf("error %d\n", (int)err);
    }
}

static uint32_t hex(const char *t) {
    uint32_t bits = 0;
    if (mpyml_parse_hex32(t, strlen(t), &bits) != MPYML_OK) {
        bits = 0x7fc00000u;
    }
    return bits;
}

static void run(size_t n_tokens) {
    uint32_t n = model.shape.n_features;
    if (!ready || n_tokens - 1 != n) {
        printf("badrun\n");
        return;
    }
    float *x = malloc(sizeof(float) * n);
    for (uint32_t i = 0; i < n; i++) {
        x[i] = mpyml_f32_from_bits(hex(tokens[1 + i]));
    }
    const float *y = mpyml_linear_run(&model, x);
    uint32_t width = mpyml_linear_width(&model);
    for (uint32_t i = 0; i < width; i++) {
        printf("%s%08" PRIx32, i ? " " : "", mpyml_f32_to_bits(y[i]));
    }
    if (model.shape.kind == MPYML_LINEAR_CLASSIFIER) {
        printf(" | %" PRIu32, mpyml_linear_predict_class(&model, x));
        if (model.shape.proba != MPYML_PROBA_NONE) {
            float *p = malloc(sizeof(float) * model.shape.n_outputs);
            mpyml_linear_predict_proba(&model, x, p);
            printf(" |");
            for (uint32_t i = 0; i < model.shape.n_outputs; i++) {
                printf(" %08" PRIx32, mpyml_f32_to_bits(p[i]));
            }
            free(p);
        }
    }
    printf("\n");
    free(x);
}

int main(void) {
    static char line[1 << 20];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t n = split(line);
        if (n == 0) {
            continue;
        }
        const char *cmd = tokens[0];
        if (strcmp(cmd, "shape") == 0 && n == 8) {
            free(block);
            block = NULL;
            ready = 0;
            mpyml_linear_shape_t s;
            uint32_t *fields[7] = { &s.kind, &s.proba, &s.n_features, &s.n_outputs, &s.n_steps, &s.n_values, &s.max_width };
            for (int i = 0; i < 7; i++) {
                *fields[i] = (uint32_t)strtoul(tokens[1 + i], NULL, 10);
            }
            mpyml_err_t err = mpyml_linear_check_shape(&s);
            if (err == MPYML_OK) {
                block = malloc(mpyml_linear_bytes(&s));
                mpyml_linear_bind(&model, &s, block);
            }
            report(err);
        } else if (block == NULL) {
            printf("noshape\n");
        } else if (strcmp(cmd, "step") == 0 && n == 4) {
            report(mpyml_linear_add_step(&model, (uint32_t)strtoul(tokens[1], NULL, 10), (uint32_t)strtoul(tokens[2], NULL, 10),
                                         (uint32_t)strtoul(tokens[3], NULL, 10)));
        } else if ((strcmp(cmd, "f") == 0 || strcmp(cmd, "i") == 0)) {
            mpyml_err_t err = MPYML_OK;
            for (size_t i = 1; i < n && err == MPYML_OK; i++) {
                uint32_t v = cmd[0] == 'f' ? hex(tokens[i]) : (uint32_t)strtoul(tokens[i], NULL, 10);
                err = mpyml_linear_add_value(&model, v);
            }
            report(err);
        } else if (strcmp(cmd, "finish") == 0) {
            mpyml_err_t err = mpyml_linear_check_complete(&model);
            ready = err == MPYML_OK;
            report(err);
        } else if (strcmp(cmd, "run") == 0) {
            run(n);
        } else {
            printf("badcommand\n");
        }
    }
    free(block);
    return 0;
}
