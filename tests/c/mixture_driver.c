// Host test driver for the Gaussian-component core (natmods/common/mpyml_mixture.h) and
// mpyml_logf (mpyml_math.h), run by tests/test_mixture_core.py under ASan and UBSan.
//
// Reads commands from stdin, one a line, whitespace-separated (a test format):
//
//   log BITS...       prints mpyml_logf of each float32 (8 hex digits), as bits
//   begin KIND COV N_FEATURES N_COMPONENTS THRESHOLD
//                     check_shape; binds a malloc'd block of exactly mpyml_mixture_bytes() bytes
//                     (THRESHOLD is stored as given: the glue parses it)
//   row TEXT          mpyml_mixture_add_row of the raw text (no spaces)
//   finish            mpyml_mixture_check_complete
//   x BITS...         one row (n_features float32 bits, in a malloc'd array of exactly that size);
//                     mixture: score, predict, proba bits; naive_bayes: predict, proba bits;
//                     envelope: mahalanobis (16 hex digits); kmeans: predict, squared distances
//   learn BITS...     k-means partial_fit of one row: prints the centre
//
// begin, row and finish print "ok" or "error CODE".
#include <inttypes.h>

#define DRIVER_NAME "mixture_driver"
#define MAX_TOKENS 70000
#include "driver_input.h"
#include "mpyml_mixture.h"

static mpyml_mixture_t model;
static void *block = NULL;

static void cleanup(void) {
    free(block);
}

static void report(mpyml_err_t err) {
    if (err == MPYML_OK) {
        printf("ok\n");
    } else {
        printf("error %d\n", (int)err);
    }
}

static void print_f(float v) {
    printf(" %08" PRIx32, mpyml_f32_to_bits(v));
}

static float *read_row(size_t n_tokens) {
    uint32_t d = model.shape.n_features;
    if (block == NULL || n_tokens != d + 1) {
        fail("row width");
    }
    float *x = (float *)malloc(sizeof(float) * d);
    if (x == NULL) {
        fail("out of memory");
    }
    for (uint32_t i = 0; i < d; i++) {
        x[i] = mpyml_f32_from_bits(parse_bits(tokens[i + 1]));
    }
    return x;
}

int main(void) {
    driver_cleanup = cleanup;
    float proba[65536];
    while (read_line(stdin) >= 0) {
        size_t n = split(line_buf);
        if (n == 0) {
            continue;
        }
        const char *cmd = tokens[0];
        if (strcmp(cmd, "log") == 0) {
            for (size_t i = 1; i < n; i++) {
                print_f(mpyml_logf(mpyml_f32_from_bits(parse_bits(tokens[i]))));
            }
            printf("\n");
        } else if (strcmp(cmd, "begin") == 0 && n == 6) {
            free(block);
            block = NULL;
            mpyml_mixture_shape_t s = { (uint32_t)parse_int(tokens[1], 0, 99), (uint32_t)parse_int(tokens[2], 0, 99),
                                        (uint32_t)parse_int(tokens[3], 0, 1 << 20), (uint32_t)parse_int(tokens[4], 0, 1 << 20) };
            mpyml_err_t err = mpyml_mixture_check_shape(&s);
            size_t bytes = err == MPYML_OK ? mpyml_mixture_bytes(&s) : 0;
            if (err == MPYML_OK && bytes == 0) {
                err = MPYML_ERR_TOO_BIG;
            }
            if (err == MPYML_OK) {
                block = malloc(bytes);
                if (block == NULL) {
                    fail("out of memory");
                }
                mpyml_mixture_bind(&model, &s, block);
            }
            report(err);
        } else if (strcmp(cmd, "row") == 0 && block != NULL) {
            const char *text = n > 1 ? tokens[1] : "";
            report(mpyml_mixture_add_row(&model, text, strlen(text)));
        } else if (strcmp(cmd, "finish") == 0 && block != NULL) {
            report(mpyml_mixture_check_complete(&model));
        } else if (strcmp(cmd, "x") == 0) {
            float *x = read_row(n);
            uint32_t k_n = model.shape.n_components;
            switch (model.shape.kind) {
                case MPYML_MIX_GMM: {
                    const float *lp = mpyml_mixture_gmm_log_probs(&model, x);
                    float score = mpyml_mixture_logsumexp(mpyml_mixture_gmm_log_probs(&model, x), k_n, proba);
                    printf("%" PRIu32, mpyml_mixture_argmax(lp, k_n));
                    print_f(score);
                    for (uint32_t k = 0; k < k_n; k++) {
                        print_f(proba[k]);
                    }
                    break;
                }
                case MPYML_MIX_NB:
                    printf("%" PRIu32, mpyml_mixture_nb_predict(&model, x));
                    mpyml_mixture_nb_proba(&model, x, proba);
                    for (uint32_t k = 0; k < k_n; k++) {
                        print_f(proba[k]);
                    }
                    break;
                case MPYML_MIX_ENVELOPE: {
                    union { double d; uint64_t u; } v;
                    v.d = mpyml_mixture_mahalanobis(&model, x);
                    printf("%016" PRIx64, v.u);
                    break;
                }
                default: {
                    printf("%" PRIu32, mpyml_mixture_kmeans_predict(&model, x));
                    const float *dist = mpyml_mixture_kmeans_distances(&model, x);
                    for (uint32_t k = 0; k < k_n; k++) {
                        print_f(dist[k]);
                    }
                }
            }
            printf("\n");
            free(x);
        } else if (strcmp(cmd, "learn") == 0 && model.shape.kind == MPYML_MIX_KMEANS) {
            float *x = read_row(n);
            printf("%" PRIu32 "\n", mpyml_mixture_kmeans_learn(&model, x));
            free(x);
        } else {
            fail("unknown command");
        }
    }
    cleanup();
    free(line_buf);
    return 0;
}
