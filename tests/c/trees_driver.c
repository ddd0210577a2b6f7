// Host test driver for the portable C core (natmods/common/mpyml_trees.h and
// mpyml_common.h), run by tests/test_c_core.py under ASan and UBSan.
//
// `trees_driver [--keep-going]` reads forests from stdin, one record a line,
// whitespace-separated tokens (a test format, not the model file format):
//
//   forest KIND DTYPE N_FEATURES N_CLASSES N_TREES N_NODES N_LEAVES WEIGHT
//                        shape (decimal) and the float32 bits of the tree weight
//                        (8 hex digits); checks the shape, then binds the forest
//                        to a malloc'd block of exactly mpyml_forest_bytes()
//                        bytes; prints "bytes N"
//   sum BITS             mpyml_forest_set_weight_sum (SAMME) of the float64 with
//                        those bits (16 hex digits)
//   tree ROOT [VOTE OTHER]
//                        mpyml_forest_add_tree (ROOT decimal int32; the votes as
//                        float64 bits, 16 hex digits each, 0.0 when omitted)
//   node FEATURE THRESHOLD LEFT RIGHT [NAN]
//                        mpyml_forest_add_node; children relative as in the model
//                        file; THRESHOLD is a decimal int32 for int16 forests, and
//                        for float32 forests text handed to mpyml_parse_hex32
//                        first (as the natmod glue does); NAN is l (1), r (0) or a
//                        decimal int handed on as nan_left (0 when omitted)
//   counts C ...         mpyml_forest_add_leaf_counts with the given decimal
//                        uint16s, in a malloc'd array of exactly that many
//   exact [TEXT]         mpyml_forest_add_leaf_exact with TEXT (n_classes x 16
//                        hex digits) from a malloc'd copy without a NUL
//   class K              mpyml_forest_add_leaf_class (decimal uint32)
//   value BITS           mpyml_forest_add_leaf_value of the float32 with those bits
//   done                 mpyml_forest_check_complete; prints "ready"
//   row X ...            n_features values (decimal for int16, float32 bits for
//                        float32) in a malloc'd array of exactly that size; prints
//                        "CLASS P0 P1 ..." (classifiers: predict_class, then the
//                        float32 bits of predict_proba) or "VALUE" (regressors:
//                        the float32 bits of predict_value)
//   end                  frees the forest; prints "end"
//   shape KIND DTYPE N_FEATURES N_CLASSES N_TREES N_NODES N_LEAVES
//                        mpyml_forest_check_shape only; prints "shape BYTES"
//   layout THRESHOLD_BYTES N_PAIRS MAX_COUNT N_TOTALS
//                        the storage fields of the next forest or shape record (without it:
//                        int16 or float32 thresholds and room for every class count of every leaf)
// Boosting (KIND 6): "forest" and "shape" take three more decimals, N_GROUPS LINK SUMS64, and
//   boost THRESHOLD SCALE OFFSET  mpyml_forest_set_boost (float64 bits, 16 hex digits each)
//   base BITS            mpyml_forest_add_base (float64 bits)
//   btree ROOT GROUP     mpyml_forest_add_boost_tree
//   bleaf BITS           mpyml_forest_add_leaf_boost (float64 bits)
//
// A record the core rejects prints "error CODE LINE MESSAGE" (LINE: 1-based
// line of stdin) and exits with status 10 + CODE; with --keep-going the driver
// instead skips to the forest's "end" line (printing "end") and goes on.
// Input that breaks the test format itself exits with status 2.
//
// `trees_driver helpers` reads lines of
//   udiv N D             prints "Q R" from mpyml_udiv (decimal uint32)
//   hex TEXT             TEXT is the rest of the line after "hex ", passed to
//                        mpyml_parse_hex32 from a malloc'd copy without a NUL;
//                        prints "ok BITS" (8 lowercase hex digits) or "error CODE"
//   finite BITS          prints "F B": mpyml_is_finite of the float with those bits
//                        and the bits read back through mpyml_f32_to_bits
//   div A B              A, B: float64 bits (16 hex digits); prints the 16 hex digits
//                        of mpyml_f64_div(A, B)
#include "mpyml_trees.h"

#define DRIVER_NAME "trees_driver"
#define MAX_TOKENS 70000
#include "driver_input.h"

static void *forest_block = NULL;
static void *forest_scratch = NULL;
// The next forest's storage fields (a "layout" record), else defaults that fit any forest.
static int layout_set = 0;
static uint32_t layout[4];

// 16 hex digits -> the 64 bits they spell.
static uint64_t parse_bits64(const char *tok) {
    if (strlen(tok) != 16) {
        fail("expected 16 hex digits");
    }
    uint32_t high = 0, low = 0;
    if (mpyml_parse_hex32(tok, 8, &high) != MPYML_OK || mpyml_parse_hex32(tok + 8, 8, &low) != MPYML_OK) {
        fail("expected 16 hex digits");
    }
    return ((uint64_t)high << 32) | low;
}  // the bound forest's block, freed on every exit path

static void free_forest_block(void) {
    free(forest_block);
    free(forest_scratch);
}

static int run_helpers(void) {
    long len;
    while ((len = read_line(stdin)) >= 0) {
        if (strncmp(line_buf, "hex ", 4) == 0) {
            size_t n = (size_t)len - 4;
            char *text = (char *)malloc(n);  // no NUL: any read past n is an overrun
            if (text == NULL && n > 0) {
                fail("out of memory");
            }
            if (n > 0) {
                memcpy(text, line_buf + 4, n);
            }
            uint32_t bits = 0xdeadbeefu;
            mpyml_err_t err = mpyml_parse_hex32(text, n, &bits);
            free(text);
            if (err == MPYML_OK) {
                printf("ok %08lx\n", (unsigned long)bits);
            } else {
                printf("error %d %08lx\n", (int)err, (unsigned long)bits);
            }
            continue;
        }
        size_t n = split(line_buf);
        if (n == 3 && strcmp(tokens[0], "udiv") == 0) {
            uint32_t num = (uint32_t)parse_int(tokens[1], 0, UINT32_MAX);
            uint32_t den = (uint32_t)parse_int(tokens[2], 0, UINT32_MAX);
            uint32_t rem = 0;
            uint32_t q = mpyml_udiv(num, den, &rem);
            uint32_t q2 = mpyml_udiv(num, den, NULL);
            if (q2 != q) {
                fail("mpyml_udiv gives another quotient without a remainder pointer");
            }
            printf("%lu %lu\n", (unsigned long)q, (unsigned long)rem);
        } else if (n == 3 && strcmp(tokens[0], "div") == 0) {
            double q = mpyml_f64_div(mpyml_f64_from_bits(parse_bits64(tokens[1])), mpyml_f64_from_bits(parse_bits64(tokens[2])));
            printf("%016llx\n", (unsigned long long)mpyml_f64_to_bits(q));
        } else if (n == 2 && strcmp(tokens[0], "finite") == 0) {
            float f = mpyml_f32_from_bits(parse_bits(tokens[1]));
            printf("%d %08lx\n", mpyml_is_finite(f), (unsigned long)mpyml_f32_to_bits(f));
        } else {
            fail("unknown helpers record");
        }
    }
    free(line_buf);
    return 0;
}

typedef struct {
    int bound;       // a forest record was accepted and the block is bound
    int skipping;    // --keep-going after a rejection: skip to "end"
    int complete;    // "done" accepted: rows may be predicted
    mpyml_forest_t forest;
} state_t;

static void reset(state_t *st) {
    free(forest_block);
    forest_block = NULL;
    free(forest_scratch);
    forest_scratch = NULL;
    layout_set = 0;
    st->bound = 0;
    st->skipping = 0;
    st->complete = 0;
}

static int keep_going = 0;

static void reject(state_t *st, mpyml_err_t err) {
    printf("error %d %lu %s\n", (int)err, lineno, mpyml_error_message(err));
    if (!keep_going) {
        fflush(stdout);
        reset(st);
        free(line_buf);
        exit(10 + (int)err);
    }
    free(forest_block);
    forest_block = NULL;
    free(forest_scratch);
    forest_scratch = NULL;
    layout_set = 0;
    st->bound = 0;
    st->complete = 0;
    st->skipping = 1;
}

// The shape tokens of a "forest" or "shape" record, converted as the glue's model._begin does
// (n_tokens 7, or 10 with the boosting fields).
static mpyml_err_t read_shape(char **tok, size_t n_tokens, mpyml_forest_shape_t *shape) {
    uint32_t v[10] = { 0 };
    for (size_t i = 0; i < n_tokens; i++) {
        v[i] = (uint32_t)parse_int(tok[i], 0, UINT32_MAX);
    }
    shape->n_groups = v[7] > 65535 ? 0 : (uint16_t)v[7];
    // Storage fields: from a "layout" record, else int16 thresholds (float32 for float32 forests) and,
    // for soft voting with counts, room for every class of every leaf.
    if (layout_set) {
        shape->threshold_bytes = layout[0] > 255 ? 255 : (uint8_t)layout[0];
        shape->n_pairs = layout[1];
        shape->max_count = layout[2];
        shape->n_totals = layout[3];
    } else {
        shape->threshold_bytes = v[1] == MPYML_DTYPE_FLOAT32 ? 4 : 2;
        int soft = v[0] == MPYML_TREES_SOFT_VOTE;
        uint64_t pairs = (uint64_t)v[6] * (v[3] ? v[3] : 1);
        shape->n_pairs = !soft ? 0 : pairs > MPYML_TREES_MAX_PAIRS ? MPYML_TREES_MAX_PAIRS : (uint32_t)pairs;
        if (soft && shape->n_pairs < v[6]) {
            shape->n_pairs = v[6];
        }
        shape->max_count = soft ? MPYML_TREES_MAX_COUNT : 0;
        shape->n_totals = soft ? v[6] : 0;
    }
    shape->link = v[8] > 255 ? 255 : (uint8_t)v[8];
    shape->sums64 = v[9] > 255 ? 255 : (uint8_t)v[9];
    shape->kind = v[0] > 255 ? 0 : (uint8_t)v[0];
    shape->dtype = v[1] > 255 ? 0 : (uint8_t)v[1];
    shape->n_features = v[2];
    shape->n_classes = v[3] > MPYML_TREES_MAX_CLASSES ? 0 : (uint16_t)v[3];
    shape->n_trees = v[4];
    shape->n_nodes = v[5];
    shape->n_leaves = v[6];
    if (v[3] > MPYML_TREES_MAX_CLASSES) {
        return MPYML_ERR_BAD_N_CLASSES;
    }
    return mpyml_forest_check_shape(shape);
}

static void predict_row(state_t *st, size_t n_values) {
    mpyml_forest_t *f = &st->forest;
    const mpyml_forest_shape_t *s = &f->shape;
    if (n_values != s->n_features) {
        fail("row: wrong number of features");
    }
    void *x;
    if (s->dtype == MPYML_DTYPE_FLOAT32) {
        float *xf = (float *)malloc(n_values * sizeof(float));
        if (xf == NULL) {
            fail("out of memory");
        }
        for (size_t i = 0; i < n_values; i++) {
            xf[i] = mpyml_f32_from_bits(parse_bits(tokens[i + 1]));
        }
        x = xf;
    } else {
        int16_t *xi = (int16_t *)malloc(n_values * sizeof(int16_t));
        if (xi == NULL) {
            fail("out of memory");
        }
        for (size_t i = 0; i < n_values; i++) {
            xi[i] = (int16_t)parse_int(tokens[i + 1], INT16_MIN, INT16_MAX);
        }
        x = xi;
    }
    if (mpyml_trees_is_regressor(s)) {
        float value = mpyml_forest_predict_value(f, x);
        printf("%08lx\n", (unsigned long)mpyml_f32_to_bits(value));
    } else {
        size_t n_out = mpyml_trees_n_outputs(s);
        float *proba = (float *)malloc(n_out * sizeof(float));
        if (proba == NULL) {
            fail("out of memory");
        }
        uint32_t cls = mpyml_forest_predict_class(f, x);
        printf("%lu", (unsigned long)cls);
        if (s->kind == MPYML_TREES_BOOST) {
            // Boosting: the decision_function values, then the probabilities (IsolationForest: its score).
            for (size_t i = 0; i < s->n_groups; i++) {
                float d[1];
                float *out = s->n_groups == 1 ? d : proba;
                mpyml_boost_decision(f, x, out);
                printf(" %08lx", (unsigned long)mpyml_f32_to_bits(out[i]));
            }
            if (s->link == MPYML_LINK_ISOLATION) {
                n_out = 1;
                proba[0] = mpyml_boost_score(f, x);
            } else {
                mpyml_forest_predict_proba(f, x, proba);
            }
        } else {
            mpyml_forest_predict_proba(f, x, proba);
        }
        for (size_t i = 0; i < n_out; i++) {
            printf(" %08lx", (unsigned long)mpyml_f32_to_bits(proba[i]));
        }
        printf("\n");
        free(proba);
    }
    free(x);
}

static int run_forests(void) {
    state_t st;
    reset(&st);
    while (read_line(stdin) >= 0) {
        size_t n = split(line_buf);
        if (n == 0) {
            continue;
        }
        const char *tag = tokens[0];
        if (strcmp(tag, "end") == 0) {
            reset(&st);
            printf("end\n");
            continue;
        }
        if (st.skipping) {
            continue;
        }
        mpyml_forest_t *f = &st.forest;
        mpyml_err_t err = MPYML_OK;
        if (strcmp(tag, "shape") == 0) {
            if (n != 8 && n != 11) {
                fail("shape needs 7 or 10 numbers");
            }
            mpyml_forest_shape_t shape;
            err = read_shape(tokens + 1, n - 1, &shape);
            if (err == MPYML_OK) {
                printf("shape %lu\n", (unsigned long)mpyml_forest_bytes(&shape));
            }
        } else if (strcmp(tag, "layout") == 0) {
            if (n != 5) {
                fail("layout needs threshold bytes, n_pairs, max_count and n_totals");
            }
            for (int i = 0; i < 4; i++) {
                layout[i] = (uint32_t)parse_int(tokens[i + 1], 0, UINT32_MAX);
            }
            layout_set = 1;
        } else if (strcmp(tag, "forest") == 0) {
            if (n != 9 && n != 12) {
                fail("forest needs 7 numbers and the tree weight bits, then optionally 3 boosting numbers");
            }
            if (st.bound) {
                fail("forest: the previous forest has no end line");
            }
            mpyml_forest_shape_t shape;
            char *shape_tokens[10];
            for (size_t i = 0; i < n - 2; i++) {
                shape_tokens[i] = tokens[i < 7 ? i + 1 : i + 2];
            }
            err = read_shape(shape_tokens, n - 2, &shape);
            if (err == MPYML_OK) {
                float weight = mpyml_f32_from_bits(parse_bits(tokens[8]));
                size_t bytes = mpyml_forest_bytes(&shape);
                // Exactly the bytes asked for, so ASan flags any access past them.
                forest_block = malloc(bytes);
                if (forest_block == NULL) {
                    fail("out of memory");
                }
                size_t scratch = mpyml_forest_load_bytes(&shape);
                forest_scratch = scratch ? malloc(scratch) : NULL;
                if (scratch && forest_scratch == NULL) {
                    fail("out of memory");
                }
                mpyml_forest_bind(f, &shape, weight, forest_block, forest_scratch);
                st.bound = 1;
                printf("bytes %lu\n", (unsigned long)bytes);
            }
        } else if (!st.bound) {
            fail("record outside a forest");
        } else if (strcmp(tag, "sum") == 0) {
            if (n != 2) {
                fail("sum needs the float64 bits");
            }
            err = mpyml_forest_set_weight_sum(f, mpyml_f64_from_bits(parse_bits64(tokens[1])));
        } else if (strcmp(tag, "boost") == 0) {
            if (n != 4) {
                fail("boost needs the threshold, scale and offset bits");
            }
            err = mpyml_forest_set_boost(f, mpyml_f64_from_bits(parse_bits64(tokens[1])),
                                         mpyml_f64_from_bits(parse_bits64(tokens[2])),
                                         mpyml_f64_from_bits(parse_bits64(tokens[3])));
        } else if (strcmp(tag, "base") == 0) {
            if (n != 2) {
                fail("base needs the float64 bits");
            }
            err = mpyml_forest_add_base(f, mpyml_f64_from_bits(parse_bits64(tokens[1])));
        } else if (strcmp(tag, "btree") == 0) {
            if (n != 3) {
                fail("btree needs a root and a group");
            }
            err = mpyml_forest_add_boost_tree(f, (int32_t)parse_int(tokens[1], INT32_MIN, INT32_MAX),
                                              (uint32_t)parse_int(tokens[2], 0, UINT32_MAX));
        } else if (strcmp(tag, "bleaf") == 0) {
            if (n != 2) {
                fail("bleaf needs the float64 bits");
            }
            err = mpyml_forest_add_leaf_boost(f, mpyml_f64_from_bits(parse_bits64(tokens[1])));
        } else if (strcmp(tag, "tree") == 0) {
            if (n != 2 && n != 4) {
                fail("tree needs a root and optionally two votes");
            }
            double vote = n == 4 ? mpyml_f64_from_bits(parse_bits64(tokens[2])) : 0.0;
            double other = n == 4 ? mpyml_f64_from_bits(parse_bits64(tokens[3])) : 0.0;
            err = mpyml_forest_add_tree(f, (int32_t)parse_int(tokens[1], INT32_MIN, INT32_MAX), vote, other);
        } else if (strcmp(tag, "node") == 0) {
            if (n != 5 && n != 6) {
                fail("node needs 4 or 5 fields");
            }
            uint32_t feature = (uint32_t)parse_int(tokens[1], 0, UINT32_MAX);
            int32_t threshold = 0;
            if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
                uint32_t bits = 0;
                err = mpyml_parse_hex32(tokens[2], strlen(tokens[2]), &bits);
                threshold = (int32_t)bits;
            } else {
                threshold = (int32_t)parse_int(tokens[2], INT32_MIN, INT32_MAX);
            }
            int32_t left = (int32_t)parse_int(tokens[3], INT32_MIN, INT32_MAX);
            int32_t right = (int32_t)parse_int(tokens[4], INT32_MIN, INT32_MAX);
            int nan_left = 0;
            if (n == 6) {
                nan_left = strcmp(tokens[5], "l") == 0 ? 1 : strcmp(tokens[5], "r") == 0 ? 0
                    : (int)parse_int(tokens[5], INT32_MIN, INT32_MAX);
            }
            if (err == MPYML_OK) {
                err = mpyml_forest_add_node(f, feature, threshold, left, right, nan_left);
            }
        } else if (strcmp(tag, "counts") == 0) {
            size_t n_values = n - 1;
            uint16_t *counts = (uint16_t *)malloc(n_values * sizeof(uint16_t));
            if (counts == NULL && n_values > 0) {
                fail("out of memory");
            }
            for (size_t i = 0; i < n_values; i++) {
                counts[i] = (uint16_t)parse_int(tokens[i + 1], 0, UINT16_MAX);
            }
            err = mpyml_forest_add_leaf_counts(f, counts, n_values);
            free(counts);
        } else if (strcmp(tag, "exact") == 0) {
            if (n > 2) {
                fail("exact needs one token");
            }
            size_t len = n == 2 ? strlen(tokens[1]) : 0;
            char *text = (char *)malloc(len);  // no NUL: any read past len is an overrun
            if (text == NULL && len > 0) {
                fail("out of memory");
            }
            if (len > 0) {
                memcpy(text, tokens[1], len);
            }
            err = mpyml_forest_add_leaf_exact(f, text, len);
            free(text);
        } else if (strcmp(tag, "class") == 0) {
            if (n != 2) {
                fail("class needs 1 number");
            }
            err = mpyml_forest_add_leaf_class(f, (uint32_t)parse_int(tokens[1], 0, UINT32_MAX));
        } else if (strcmp(tag, "value") == 0) {
            if (n != 2) {
                fail("value needs the float32 bits");
            }
            err = mpyml_forest_add_leaf_value(f, mpyml_f32_from_bits(parse_bits(tokens[1])));
        } else if (strcmp(tag, "done") == 0) {
            err = mpyml_forest_check_complete(f);
            if (err == MPYML_OK) {
                st.complete = 1;
                printf("ready\n");
            }
        } else if (strcmp(tag, "row") == 0) {
            if (!st.complete) {
                fail("row before an accepted done");
            }
            predict_row(&st, n - 1);
        } else {
            fail("unknown record");
        }
        if (err != MPYML_OK) {
            reject(&st, err);
        }
    }
    reset(&st);
    free(line_buf);
    return 0;
}

int main(int argc, char **argv) {
    driver_cleanup = free_forest_block;
    if (argc == 2 && strcmp(argv[1], "helpers") == 0) {
        return run_helpers();
    }
    if (argc == 2 && strcmp(argv[1], "--keep-going") == 0) {
        keep_going = 1;
    } else if (argc != 1) {
        fprintf(stderr, "usage: trees_driver [--keep-going | helpers] < input\n");
        return 2;
    }
    return run_forests();
}
