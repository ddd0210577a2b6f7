// Decision-forest evaluation for mpyml (format: docs/formats.md, "mpyml-trees").
//
// Portable C99, header-only: no MicroPython headers, no libc, no allocation.
// The caller owns one memory block sized by mpyml_forest_bytes() and hands it
// to mpyml_forest_bind(); records are then stored one by one with the
// mpyml_forest_set_* functions, which validate everything that predict relies
// on, so predicting on a forest that mpyml_forest_check_complete() accepted
// never reads out of bounds and always terminates.
#ifndef MPYML_TREES_H
#define MPYML_TREES_H

#include <stddef.h>
#include <stdint.h>

#include "mpyml_common.h"

typedef enum {
    MPYML_TREES_SOFT_VOTE = 1,   // classifier: mean of per-tree class probabilities
    MPYML_TREES_HARD_VOTE = 2,   // classifier: majority of per-tree classes
    MPYML_TREES_REGRESSOR = 3,   // mean of per-tree leaf values
} mpyml_trees_kind_t;

// Limits that follow from the storage types below.
#define MPYML_TREES_MAX_FEATURES 65535u
#define MPYML_TREES_MAX_CLASSES 65535u
#define MPYML_TREES_MAX_LEAVES 32768u
#define MPYML_TREES_MAX_NODES 0x1000000u
#define MPYML_TREES_MAX_CHILD_OFFSET 32767u

typedef struct {
    uint8_t kind;           // mpyml_trees_kind_t
    uint8_t dtype;          // mpyml_dtype_t of the features
    uint16_t n_classes;     // classifiers; 0 for regressors
    uint32_t n_features;
    uint32_t n_trees;
    uint32_t n_nodes;
    uint32_t n_leaves;
} mpyml_forest_shape_t;

// A child reference: > 0 is the offset from the current node to the child
// node (children always come after their parent), < 0 is leaf -(ref + 1).
typedef int16_t mpyml_child_t;

typedef struct {
    mpyml_forest_shape_t shape;
    float tree_weight;              // 1 / n_trees
    uint32_t n_trees_set, n_nodes_set, n_leaves_set;
    int32_t *roots;                 // per tree: >= 0 first node, < 0 leaf -(root + 1)
    uint16_t *features;             // per node
    int16_t *thresholds_i16;        // per node, int16 forests
    float *thresholds_f32;          // per node, float32 forests
    mpyml_child_t *left;            // per node, taken when x <= threshold
    mpyml_child_t *right;           // per node
    float *leaf_values;             // soft vote: n_leaves * n_classes; regressor: n_leaves
    uint16_t *leaf_classes;         // hard vote: n_leaves
    float *sums;                    // scratch for one prediction: max(n_classes, 1)
} mpyml_forest_t;

static inline size_t mpyml_trees_leaf_width(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_SOFT_VOTE ? s->n_classes : (s->kind == MPYML_TREES_REGRESSOR ? 1 : 0);
}

static inline size_t mpyml_trees_n_outputs(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_REGRESSOR ? 1 : s->n_classes;
}

// Checks a shape read from a file header (before anything is allocated).
static inline mpyml_err_t mpyml_forest_check_shape(const mpyml_forest_shape_t *s) {
    if (s->kind != MPYML_TREES_SOFT_VOTE && s->kind != MPYML_TREES_HARD_VOTE && s->kind != MPYML_TREES_REGRESSOR) {
        return MPYML_ERR_BAD_KIND;
    }
    if (s->dtype != MPYML_DTYPE_INT16 && s->dtype != MPYML_DTYPE_FLOAT32) {
        return MPYML_ERR_BAD_DTYPE;
    }
    if (s->n_features < 1 || s->n_features > MPYML_TREES_MAX_FEATURES) {
        return MPYML_ERR_BAD_N_FEATURES;
    }
    if (s->kind == MPYML_TREES_REGRESSOR ? s->n_classes != 0 : s->n_classes < 1) {
        return MPYML_ERR_BAD_N_CLASSES;
    }
    if (s->n_trees < 1) {
        return MPYML_ERR_NO_TREES;
    }
    if (s->n_leaves < 1 || s->n_leaves > MPYML_TREES_MAX_LEAVES) {
        return MPYML_ERR_BAD_N_LEAVES;
    }
    // mpyml_forest_bytes() must not overflow a 32-bit size_t.
    if (s->n_trees > MPYML_TREES_MAX_NODES || s->n_nodes > MPYML_TREES_MAX_NODES ||
        (s->kind == MPYML_TREES_SOFT_VOTE && s->n_leaves > mpyml_udiv(MPYML_TREES_MAX_NODES, s->n_classes, NULL))) {
        return MPYML_ERR_TOO_BIG;
    }
    return MPYML_OK;
}

#define MPYML_ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

// Bytes of the one block that holds every array of a forest of this shape.
static inline size_t mpyml_forest_bytes(const mpyml_forest_shape_t *s) {
    size_t threshold_size = s->dtype == MPYML_DTYPE_FLOAT32 ? sizeof(float) : sizeof(int16_t);
    size_t n_sums = s->n_classes > 0 ? s->n_classes : 1;
    size_t bytes = 0;
    bytes += MPYML_ALIGN4((size_t)s->n_trees * sizeof(int32_t));
    bytes += MPYML_ALIGN4((size_t)s->n_nodes * threshold_size);
    bytes += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(uint16_t));
    bytes += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(mpyml_child_t)) * 2;
    if (s->kind == MPYML_TREES_HARD_VOTE) {
        bytes += MPYML_ALIGN4((size_t)s->n_leaves * sizeof(uint16_t));
    } else {
        bytes += (size_t)s->n_leaves * mpyml_trees_leaf_width(s) * sizeof(float);
    }
    bytes += n_sums * sizeof(float);
    return bytes;
}

// Lays the arrays out in `block` (mpyml_forest_bytes(shape) bytes, 4-aligned).
static inline void mpyml_forest_bind(mpyml_forest_t *f, const mpyml_forest_shape_t *s, float tree_weight, void *block) {
    uint8_t *p = (uint8_t *)block;
    // Field by field: a struct assignment may compile to a memset call, which natmods cannot link.
    f->shape = *s;
    f->tree_weight = tree_weight;
    f->n_trees_set = 0;
    f->n_nodes_set = 0;
    f->n_leaves_set = 0;
    f->thresholds_i16 = NULL;
    f->thresholds_f32 = NULL;
    f->leaf_values = NULL;
    f->leaf_classes = NULL;
    f->roots = (int32_t *)p;
    p += MPYML_ALIGN4((size_t)s->n_trees * sizeof(int32_t));
    if (s->dtype == MPYML_DTYPE_FLOAT32) {
        f->thresholds_f32 = (float *)p;
        p += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(float));
    } else {
        f->thresholds_i16 = (int16_t *)p;
        p += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(int16_t));
    }
    f->features = (uint16_t *)p;
    p += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(uint16_t));
    f->left = (mpyml_child_t *)p;
    p += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(mpyml_child_t));
    f->right = (mpyml_child_t *)p;
    p += MPYML_ALIGN4((size_t)s->n_nodes * sizeof(mpyml_child_t));
    if (s->kind == MPYML_TREES_HARD_VOTE) {
        f->leaf_classes = (uint16_t *)p;
        p += MPYML_ALIGN4((size_t)s->n_leaves * sizeof(uint16_t));
    } else {
        f->leaf_values = (float *)p;
        p += (size_t)s->n_leaves * mpyml_trees_leaf_width(s) * sizeof(float);
    }
    f->sums = (float *)p;
}

// A tree root as written in the file: >= 0 node index, < 0 leaf -(root + 1).
static inline mpyml_err_t mpyml_forest_check_root(const mpyml_forest_t *f, int32_t root) {
    if (root >= 0) {
        return (uint32_t)root < f->shape.n_nodes ? MPYML_OK : MPYML_ERR_NODE_REF_RANGE;
    }
    return (uint32_t)(-(root + 1)) < f->shape.n_leaves ? MPYML_OK : MPYML_ERR_LEAF_REF_RANGE;
}

static inline mpyml_err_t mpyml_forest_add_tree(mpyml_forest_t *f, int32_t root) {
    if (f->n_trees_set >= f->shape.n_trees) {
        return MPYML_ERR_TOO_MANY_TREES;
    }
    mpyml_err_t err = mpyml_forest_check_root(f, root);
    if (err) {
        return err;
    }
    f->roots[f->n_trees_set++] = root;
    return MPYML_OK;
}

// Checks child reference `ref` of node `node` (the stored form, see mpyml_child_t):
// a positive offset must land on a later node, so every walk ends at a leaf.
static inline mpyml_err_t mpyml_forest_check_child(const mpyml_forest_t *f, uint32_t node, int32_t ref) {
    if (ref < 0) {
        return (uint32_t)(-(ref + 1)) < f->shape.n_leaves ? MPYML_OK : MPYML_ERR_LEAF_REF_RANGE;
    }
    if (ref == 0) {
        return MPYML_ERR_CHILD_BEFORE_PARENT;
    }
    if ((uint32_t)ref > MPYML_TREES_MAX_CHILD_OFFSET) {
        return MPYML_ERR_CHILD_TOO_FAR;
    }
    return (uint32_t)ref < f->shape.n_nodes - node ? MPYML_OK : MPYML_ERR_NODE_REF_RANGE;
}

// threshold_bits: the int16 threshold, or the IEEE-754 bits of the float32 one.
static inline mpyml_err_t mpyml_forest_add_node(mpyml_forest_t *f, uint32_t feature, int32_t threshold_bits, int32_t left, int32_t right) {
    uint32_t node = f->n_nodes_set;
    if (node >= f->shape.n_nodes) {
        return MPYML_ERR_TOO_MANY_NODES;
    }
    if (feature >= f->shape.n_features) {
        return MPYML_ERR_FEATURE_RANGE;
    }
    mpyml_err_t err = mpyml_forest_check_child(f, node, left);
    if (err) {
        return err;
    }
    err = mpyml_forest_check_child(f, node, right);
    if (err) {
        return err;
    }
    if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
        float t = mpyml_f32_from_bits((uint32_t)threshold_bits);
        if (t != t) {
            return MPYML_ERR_NAN;
        }
        f->thresholds_f32[node] = t;
    } else {
        if (threshold_bits < INT16_MIN || threshold_bits > INT16_MAX) {
            return MPYML_ERR_THRESHOLD_RANGE;
        }
        f->thresholds_i16[node] = (int16_t)threshold_bits;
    }
    f->features[node] = (uint16_t)feature;
    f->left[node] = (mpyml_child_t)left;
    f->right[node] = (mpyml_child_t)right;
    f->n_nodes_set++;
    return MPYML_OK;
}

// values: n_classes probabilities (soft vote), one class index (hard vote) or one value (regressor).
static inline mpyml_err_t mpyml_forest_add_leaf(mpyml_forest_t *f, const float *values, size_t n_values) {
    uint32_t leaf = f->n_leaves_set;
    if (leaf >= f->shape.n_leaves) {
        return MPYML_ERR_TOO_MANY_LEAVES;
    }
    if (f->shape.kind == MPYML_TREES_HARD_VOTE) {
        if (n_values != 1) {
            return MPYML_ERR_LEAF_WIDTH;
        }
        float c = values[0];
        if (!(c >= 0.0f && c < (float)f->shape.n_classes) || (float)(uint16_t)c != c) {
            return MPYML_ERR_CLASS_RANGE;
        }
        f->leaf_classes[leaf] = (uint16_t)c;
    } else {
        size_t width = mpyml_trees_leaf_width(&f->shape);
        if (n_values != width) {
            return MPYML_ERR_LEAF_WIDTH;
        }
        for (size_t i = 0; i < width; i++) {
            if (!mpyml_is_finite(values[i])) {
                return MPYML_ERR_NOT_FINITE;
            }
            f->leaf_values[leaf * width + i] = values[i];
        }
    }
    f->n_leaves_set++;
    return MPYML_OK;
}

static inline mpyml_err_t mpyml_forest_check_complete(const mpyml_forest_t *f) {
    if (f->n_trees_set != f->shape.n_trees) {
        return MPYML_ERR_MISSING_TREES;
    }
    if (f->n_nodes_set != f->shape.n_nodes) {
        return MPYML_ERR_MISSING_NODES;
    }
    if (f->n_leaves_set != f->shape.n_leaves) {
        return MPYML_ERR_MISSING_LEAVES;
    }
    return MPYML_OK;
}

// Index of the leaf that tree `root` sends x to.
static inline uint32_t mpyml_tree_leaf_i16(const mpyml_forest_t *f, int32_t root, const int16_t *x) {
    if (root < 0) {
        return (uint32_t)(-(root + 1));
    }
    uint32_t node = (uint32_t)root;
    for (;;) {
        mpyml_child_t next = x[f->features[node]] <= f->thresholds_i16[node] ? f->left[node] : f->right[node];
        if (next < 0) {
            return (uint32_t)(-(next + 1));
        }
        node += (uint32_t)next;
    }
}

static inline uint32_t mpyml_tree_leaf_f32(const mpyml_forest_t *f, int32_t root, const float *x) {
    if (root < 0) {
        return (uint32_t)(-(root + 1));
    }
    uint32_t node = (uint32_t)root;
    for (;;) {
        mpyml_child_t next = x[f->features[node]] <= f->thresholds_f32[node] ? f->left[node] : f->right[node];
        if (next < 0) {
            return (uint32_t)(-(next + 1));
        }
        node += (uint32_t)next;
    }
}

static inline uint32_t mpyml_tree_leaf(const mpyml_forest_t *f, uint32_t tree, const void *x) {
    if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
        return mpyml_tree_leaf_f32(f, f->roots[tree], (const float *)x);
    }
    return mpyml_tree_leaf_i16(f, f->roots[tree], (const int16_t *)x);
}

// Adds every tree's vote (classifiers) or value (regressors) for one row x
// into out[0 .. n_outputs), unscaled. Trees are summed in file order.
static inline void mpyml_forest_sum(const mpyml_forest_t *f, const void *x, float *out) {
    size_t n_out = mpyml_trees_n_outputs(&f->shape);
    for (size_t i = 0; i < n_out; i++) {
        out[i] = 0.0f;
    }
    for (uint32_t t = 0; t < f->shape.n_trees; t++) {
        uint32_t leaf = mpyml_tree_leaf(f, t, x);
        if (f->shape.kind == MPYML_TREES_HARD_VOTE) {
            out[f->leaf_classes[leaf]] += 1.0f;
        } else {
            const float *values = &f->leaf_values[(size_t)leaf * n_out];
            for (size_t i = 0; i < n_out; i++) {
                out[i] += values[i];
            }
        }
    }
}

// Class probabilities (classifiers) or the predicted value (regressors) of one row.
static inline void mpyml_forest_predict_proba(const mpyml_forest_t *f, const void *x, float *out) {
    mpyml_forest_sum(f, x, out);
    size_t n_out = mpyml_trees_n_outputs(&f->shape);
    for (size_t i = 0; i < n_out; i++) {
        out[i] *= f->tree_weight;
    }
}

// Lowest index of the largest value, as numpy.argmax.
static inline uint32_t mpyml_argmax(const float *values, size_t n) {
    uint32_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (values[i] > values[best]) {
            best = (uint32_t)i;
        }
    }
    return best;
}

// Class index of one row; uses the forest's own scratch, so not reentrant.
static inline uint32_t mpyml_forest_predict_class(const mpyml_forest_t *f, const void *x) {
    mpyml_forest_sum(f, x, f->sums);
    return mpyml_argmax(f->sums, f->shape.n_classes);
}

static inline float mpyml_forest_predict_value(const mpyml_forest_t *f, const void *x) {
    mpyml_forest_sum(f, x, f->sums);
    return f->sums[0] * f->tree_weight;
}

#endif // MPYML_TREES_H
