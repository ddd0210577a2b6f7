// Decision-forest evaluation for mpyml (format: docs/formats.md, "mpyml-trees").
//
// Portable C99, header-only: no MicroPython headers, no libc, no allocation.
// The caller owns one memory block sized by mpyml_forest_bytes() and hands it
// to mpyml_forest_bind(); records are then stored one by one with the
// mpyml_forest_add_* functions, which validate everything that predict relies
// on, so predicting on a forest that mpyml_forest_check_complete() accepted
// never reads out of bounds and always terminates.
//
// Class decisions follow scikit-learn's float64 arithmetic exactly. Double
// arithmetic here is only addition, subtraction, comparison and conversion
// (libgcc members that natmods link on every target); the one division,
// mpyml_f64_div, is done in integers.
#ifndef MPYML_TREES_H
#define MPYML_TREES_H

#include <stddef.h>
#include <stdint.h>

#include "mpyml_common.h"
#include "mpyml_f64.h"
#include "mpyml_math.h"

typedef enum {
    MPYML_TREES_SOFT_VOTE = 1,   // classifier: mean of per-tree class probabilities, leaves as class counts
    MPYML_TREES_HARD_VOTE = 2,   // classifier: majority of per-tree classes
    MPYML_TREES_REGRESSOR = 3,   // mean of per-tree leaf values
    MPYML_TREES_SAMME = 4,       // classifier: AdaBoost SAMME, weighted votes of per-tree classes
    MPYML_TREES_SOFT_EXACT = 5,  // as SOFT_VOTE, leaves as float64 probabilities
    MPYML_TREES_BOOST = 6,       // gradient boosting: per output group, base + sum of leaf values (regressor: n_classes 0)
} mpyml_trees_kind_t;

// Boosting: how raw scores become predictions (regressors: link(scale * raw); classifiers' probabilities).
typedef enum {
    MPYML_LINK_IDENTITY = 0,
    MPYML_LINK_EXP = 1,
    MPYML_LINK_LOGISTIC = 2,
    MPYML_LINK_SOFTMAX = 3,
    MPYML_LINK_ISOLATION = 4,  // IsolationForest: score_samples = -2**(scale * raw), decision_function = score - offset
} mpyml_link_t;

// Limits that follow from the storage types below.
#define MPYML_TREES_MAX_FEATURES 32767u   // the top bit of a node's feature index is its NaN direction
#define MPYML_TREES_MAX_CLASSES 65535u
#define MPYML_TREES_MAX_LEAVES 32768u
#define MPYML_TREES_MAX_NODES 0x1000000u
#define MPYML_TREES_MAX_CHILD_OFFSET 32767u
#define MPYML_TREES_MAX_COUNT 65535u
#define MPYML_TREES_NAN_LEFT 0x8000u      // in features[]: NaN goes to the left child
#define MPYML_TREES_NAN_LEFT8 0x80u       // in features8[] (float32 forests of at most 128 features)
#define MPYML_TREES_MAX_PAIRS 32768u      // SOFT_VOTE: class:count pairs of all leaves (leaf references point at them)

typedef struct {
    uint8_t kind;           // mpyml_trees_kind_t
    uint8_t dtype;          // mpyml_dtype_t of the features
    uint16_t n_classes;     // classifiers; 0 for regressors
    uint32_t n_features;
    uint32_t n_trees;
    uint32_t n_nodes;
    uint32_t n_leaves;
    uint16_t n_groups;      // BOOST: output groups (1 for regressors and binary classifiers, else n_classes)
    uint8_t link;           // BOOST: mpyml_link_t
    uint8_t sums64;         // BOOST: 1 when the library sums in float64 (leaves also kept as float64)
    uint8_t threshold_bytes; // 1 (int8) or 2 (int16) for int16 forests, 4 (float32) for float32 forests
    uint32_t n_pairs;       // SOFT_VOTE: capacity for the leaves' class:count pairs (n_leaves..MAX_PAIRS)
    uint32_t max_count;     // SOFT_VOTE: the largest class count (1..65535): sets the pair width
    uint32_t n_totals;      // SOFT_VOTE: capacity for the distinct leaf totals (1..n_leaves)
} mpyml_forest_shape_t;

// A child reference: > 0 is the offset from the current node to the child
// node (children always come after their parent), < 0 is leaf -(ref + 1).
typedef int16_t mpyml_child_t;

typedef struct {
    mpyml_forest_shape_t shape;
    float tree_weight;              // 1 / n_trees
    uint32_t n_trees_set, n_nodes_set, n_leaves_set;
    double weight_sum;              // SAMME: scikit-learn's estimator_weights_.sum()
    double *tree_votes;             // SAMME: per tree, the weight of a vote for its class and for every other class
    double *exact_sums;             // SAMME: scratch of n_classes
    double *leaf_exact;             // SOFT_EXACT: n_leaves * n_classes float64 probabilities
    int32_t *roots;                 // per tree: >= 0 first node, < 0 leaf -(root + 1)
    uint16_t *features;             // per node: feature index | MPYML_TREES_NAN_LEFT (more than 128 / 256 features)
    uint8_t *features8;             // per node: feature index | MPYML_TREES_NAN_LEFT8 (float32, <= 128 features; int16, <= 256)
    int8_t *thresholds_i8;          // per node, int16 forests whose thresholds all fit -128..127
    int16_t *thresholds_i16;        // per node, other int16 forests
    float *thresholds_f32;          // per node, float32 forests
    mpyml_child_t *left;            // per node, taken when x <= threshold
    mpyml_child_t *right;           // per node
    // SOFT_VOTE: each leaf is a run of class:count pairs for its non-zero classes, the last one flagged;
    // leaf references point at a leaf's first pair. A pair is count << (class_bits + 1) | class << 1 | last,
    // in 16 bits when that fits, else 32.
    uint16_t *pairs16;
    uint32_t *pairs32;
    uint32_t *totals;               // SOFT_VOTE: the distinct leaf totals (sums of counts), ascending
    float *total_scales;            // SOFT_VOTE: float32(1 / total) of each
    uint32_t *leaf_offsets;         // SOFT_VOTE while loading only: each leaf's first pair (the caller's scratch)
    uint32_t n_pairs_set, n_totals_set;
    uint8_t class_shift;            // SOFT_VOTE: a pair's count starts at this bit
    float *leaf_values;             // regressor: n_leaves
    uint16_t *leaf_classes;         // hard vote, SAMME: n_leaves
    float *sums;                    // scratch for one prediction: max(n_classes, 1); BOOST: 2 * n_groups
    // BOOST (leaf_values holds the float32 leaf values, leaf_exact the float64 ones when sums64,
    // exact_sums n_groups float64 scratch)
    double *base;                   // per group: the sums' starting value
    uint16_t *tree_groups;          // per tree: the group it adds to
    double boost_threshold;         // binary: class 1 exactly when raw > boost_threshold
    float boost_scale;              // link(scale * raw)
    float boost_offset;             // IsolationForest: offset_
    uint32_t n_base_set;
} mpyml_forest_t;

// ---------------------------------------------------------------- shape and memory

static inline int mpyml_trees_is_soft(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_SOFT_VOTE || s->kind == MPYML_TREES_SOFT_EXACT;
}

static inline uint32_t mpyml_bits_for(uint32_t v) {
    uint32_t n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

// SOFT_VOTE: pairs take 16 bits when count, class and the last-pair flag fit, else 32.
static inline size_t mpyml_pair_bytes(const mpyml_forest_shape_t *s) {
    return 1u + mpyml_bits_for(s->n_classes - 1u) + mpyml_bits_for(s->max_count) <= 16u ? 2u : 4u;
}

// Features take one byte for up to 128 (float32: the top bit is the NaN direction) or 256 (int16) features.
static inline int mpyml_features_narrow(const mpyml_forest_shape_t *s) {
    return s->n_features <= (s->dtype == MPYML_DTYPE_FLOAT32 ? 128u : 256u);
}

static inline int mpyml_trees_leaf_is_class(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_HARD_VOTE || s->kind == MPYML_TREES_SAMME;
}

static inline int mpyml_trees_is_regressor(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_REGRESSOR || (s->kind == MPYML_TREES_BOOST && s->n_classes == 0);
}

static inline size_t mpyml_trees_n_outputs(const mpyml_forest_shape_t *s) {
    return mpyml_trees_is_regressor(s) ? 1 : s->n_classes;
}

// Checks a shape read from a file header (before anything is allocated).
static inline mpyml_err_t mpyml_forest_check_shape(const mpyml_forest_shape_t *s) {
    if (s->kind < MPYML_TREES_SOFT_VOTE || s->kind > MPYML_TREES_BOOST) {
        return MPYML_ERR_BAD_KIND;
    }
    if (s->kind == MPYML_TREES_BOOST) {
        int ok = s->n_classes == 0 ? s->n_groups == 1 && s->link < MPYML_LINK_SOFTMAX
            : (s->n_classes == 2 && s->n_groups == 1 && (s->link == MPYML_LINK_LOGISTIC || s->link == MPYML_LINK_ISOLATION)) ||
              (s->n_classes >= 2 && s->n_groups == s->n_classes && s->link == MPYML_LINK_SOFTMAX);
        if (!ok || s->sums64 > 1) {
            return MPYML_ERR_BOOST_SHAPE;
        }
    } else if (s->n_groups != 0 || s->link != 0 || s->sums64 != 0) {
        return MPYML_ERR_BOOST_SHAPE;
    }
    if (s->dtype != MPYML_DTYPE_INT16 && s->dtype != MPYML_DTYPE_FLOAT32) {
        return MPYML_ERR_BAD_DTYPE;
    }
    if (s->n_features < 1 || s->n_features > MPYML_TREES_MAX_FEATURES) {
        return MPYML_ERR_TREES_N_FEATURES;
    }
    if (s->kind == MPYML_TREES_REGRESSOR ? s->n_classes != 0 : (s->n_classes < 1 && s->kind != MPYML_TREES_BOOST)) {
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
        (mpyml_trees_is_soft(s) && s->n_leaves > mpyml_udiv(MPYML_TREES_MAX_NODES, s->n_classes, NULL))) {
        return MPYML_ERR_TOO_BIG;
    }
    if (s->dtype == MPYML_DTYPE_FLOAT32 ? s->threshold_bytes != 4 : (s->threshold_bytes != 1 && s->threshold_bytes != 2)) {
        return MPYML_ERR_THRESHOLD_BYTES;
    }
    if (s->kind == MPYML_TREES_SOFT_VOTE) {
        if (s->n_pairs < s->n_leaves || s->n_pairs > MPYML_TREES_MAX_PAIRS || s->max_count < 1 ||
            s->max_count > MPYML_TREES_MAX_COUNT || s->n_totals < 1 || s->n_totals > s->n_leaves ||
            1u + mpyml_bits_for(s->n_classes - 1u) + mpyml_bits_for(s->max_count) > 32u) {
            return MPYML_ERR_LEAF_PAIRS;
        }
    } else if (s->n_pairs != 0 || s->max_count != 0 || s->n_totals != 0) {
        return MPYML_ERR_LEAF_PAIRS;
    }
    return MPYML_OK;
}

#define MPYML_ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

// Sizes of the arrays of a forest of shape s, in the order mpyml_forest_bind lays them out
// (the float64 arrays first: the block is 8-aligned).
#define MPYML_FOREST_ARRAYS 13

static inline void mpyml_forest_sizes(const mpyml_forest_shape_t *s, size_t sizes[MPYML_FOREST_ARRAYS]) {
    size_t threshold_size = s->threshold_bytes;
    int soft = s->kind == MPYML_TREES_SOFT_VOTE;
    int samme = s->kind == MPYML_TREES_SAMME, boost = s->kind == MPYML_TREES_BOOST;
    sizes[0] = samme ? (size_t)s->n_trees * 2 * sizeof(double)                   // tree_votes
        : (boost ? (size_t)s->n_groups * sizeof(double) : 0);                    // base
    sizes[1] = samme ? (size_t)s->n_classes * sizeof(double)                     // exact_sums
        : (boost ? (size_t)s->n_groups * sizeof(double) : 0);
    sizes[2] = s->kind == MPYML_TREES_SOFT_EXACT ? (size_t)s->n_leaves * s->n_classes * sizeof(double)
        : (boost && s->sums64 ? (size_t)s->n_leaves * sizeof(double) : 0);      // leaf_exact
    sizes[3] = MPYML_ALIGN4((size_t)s->n_trees * sizeof(int32_t));               // roots
    sizes[4] = MPYML_ALIGN4((size_t)s->n_nodes * threshold_size);                // thresholds
    sizes[5] = MPYML_ALIGN4((size_t)s->n_nodes * (mpyml_features_narrow(s) ? 1u : 2u));  // features
    sizes[6] = MPYML_ALIGN4((size_t)s->n_nodes * sizeof(mpyml_child_t));         // left
    sizes[7] = sizes[6];                                                         // right
    sizes[8] = soft ? MPYML_ALIGN4((size_t)s->n_pairs * mpyml_pair_bytes(s)) : 0;   // pairs
    sizes[9] = soft ? (size_t)s->n_totals * sizeof(float)                         // total_scales
        : (boost ? MPYML_ALIGN4((size_t)s->n_trees * sizeof(uint16_t)) : 0);       // tree_groups
    sizes[10] = s->kind == MPYML_TREES_REGRESSOR || boost ? (size_t)s->n_leaves * sizeof(float)
        : (mpyml_trees_leaf_is_class(s) ? MPYML_ALIGN4((size_t)s->n_leaves * sizeof(uint16_t)) : 0);
    sizes[11] = boost ? (size_t)s->n_groups * 2 * sizeof(float)                  // sums and magnitudes
        : (size_t)(s->n_classes > 0 ? s->n_classes : 1) * sizeof(float);        // sums
    sizes[12] = soft ? (size_t)s->n_totals * sizeof(uint32_t) : 0;               // totals
}

// Bytes of the one block that holds every array of a forest of this shape.
static inline size_t mpyml_forest_bytes(const mpyml_forest_shape_t *s) {
    size_t sizes[MPYML_FOREST_ARRAYS];
    mpyml_forest_sizes(s, sizes);
    size_t bytes = 0;
    for (int i = 0; i < MPYML_FOREST_ARRAYS; i++) {
        bytes += sizes[i];
    }
    return bytes;
}

// Lays the arrays out in `block` (mpyml_forest_bytes(shape) bytes, 8-aligned).
// Scratch bytes the caller hands to mpyml_forest_bind for loading only (SOFT_VOTE: each leaf's first pair).
static inline size_t mpyml_forest_load_bytes(const mpyml_forest_shape_t *s) {
    return s->kind == MPYML_TREES_SOFT_VOTE ? (size_t)s->n_leaves * sizeof(uint32_t) : 0;
}

// Lays the arrays out in `block` (mpyml_forest_bytes(shape) bytes, 8-aligned); `scratch`
// (mpyml_forest_load_bytes(shape) bytes, 4-aligned) is needed until mpyml_forest_check_complete.
static inline void mpyml_forest_bind(mpyml_forest_t *f, const mpyml_forest_shape_t *s, float tree_weight, void *block,
                                     void *scratch) {
    size_t sizes[MPYML_FOREST_ARRAYS];
    mpyml_forest_sizes(s, sizes);
    uint8_t *p = (uint8_t *)block;
    uint8_t *at[MPYML_FOREST_ARRAYS];
    for (int i = 0; i < MPYML_FOREST_ARRAYS; i++) {
        at[i] = sizes[i] ? p : NULL;
        p += sizes[i];
    }
    // Field by field: a struct assignment may compile to a memcpy call, which natmods cannot link.
    f->shape.kind = s->kind;
    f->shape.dtype = s->dtype;
    f->shape.n_classes = s->n_classes;
    f->shape.n_features = s->n_features;
    f->shape.n_trees = s->n_trees;
    f->shape.n_nodes = s->n_nodes;
    f->shape.n_leaves = s->n_leaves;
    f->shape.n_groups = s->n_groups;
    f->shape.link = s->link;
    f->shape.sums64 = s->sums64;
    f->shape.threshold_bytes = s->threshold_bytes;
    f->shape.n_pairs = s->n_pairs;
    f->shape.max_count = s->max_count;
    f->shape.n_totals = s->n_totals;
    f->tree_weight = tree_weight;
    f->n_trees_set = 0;
    f->n_nodes_set = 0;
    f->n_leaves_set = 0;
    f->weight_sum = 0.0;
    int boost = s->kind == MPYML_TREES_BOOST;
    f->tree_votes = boost ? NULL : (double *)at[0];
    f->base = boost ? (double *)at[0] : NULL;
    f->exact_sums = (double *)at[1];
    f->leaf_exact = (double *)at[2];
    f->boost_threshold = 0.0;
    f->boost_scale = 1.0f;
    f->boost_offset = 0.0f;
    f->n_base_set = 0;
    f->roots = (int32_t *)at[3];
    f->thresholds_f32 = s->threshold_bytes == 4 ? (float *)at[4] : NULL;
    f->thresholds_i16 = s->threshold_bytes == 2 ? (int16_t *)at[4] : NULL;
    f->thresholds_i8 = s->threshold_bytes == 1 ? (int8_t *)at[4] : NULL;
    f->features = mpyml_features_narrow(s) ? NULL : (uint16_t *)at[5];
    f->features8 = mpyml_features_narrow(s) ? (uint8_t *)at[5] : NULL;
    f->left = (mpyml_child_t *)at[6];
    f->right = (mpyml_child_t *)at[7];
    int soft = s->kind == MPYML_TREES_SOFT_VOTE;
    f->pairs16 = soft && mpyml_pair_bytes(s) == 2 ? (uint16_t *)at[8] : NULL;
    f->pairs32 = soft && mpyml_pair_bytes(s) == 4 ? (uint32_t *)at[8] : NULL;
    f->total_scales = soft ? (float *)at[9] : NULL;
    f->totals = (uint32_t *)at[12];
    f->leaf_offsets = (uint32_t *)scratch;
    f->n_pairs_set = 0;
    f->n_totals_set = 0;
    f->class_shift = (uint8_t)(1u + mpyml_bits_for(s->n_classes - 1u));
    f->tree_groups = boost ? (uint16_t *)at[9] : NULL;
    f->leaf_values = s->kind == MPYML_TREES_REGRESSOR || boost ? (float *)at[10] : NULL;
    f->leaf_classes = mpyml_trees_leaf_is_class(s) ? (uint16_t *)at[10] : NULL;
    f->sums = (float *)at[11];
}

// ---------------------------------------------------------------- records

// SAMME: scikit-learn's estimator_weights_.sum(), which the weighted votes are divided by.
static inline mpyml_err_t mpyml_forest_set_weight_sum(mpyml_forest_t *f, double weight_sum) {
    if (f->shape.kind != MPYML_TREES_SAMME || !mpyml_f64_is_finite(weight_sum) || !(weight_sum > 0.0)) {
        return MPYML_ERR_TREE_WEIGHT;
    }
    f->weight_sum = weight_sum;
    return MPYML_OK;
}

// A tree root as written in the file: >= 0 node index, < 0 leaf -(root + 1).
static inline mpyml_err_t mpyml_forest_check_root(const mpyml_forest_t *f, int32_t root) {
    if (root >= 0) {
        return (uint32_t)root < f->shape.n_nodes ? MPYML_OK : MPYML_ERR_NODE_REF_RANGE;
    }
    return (uint32_t)(-(root + 1)) < f->shape.n_leaves ? MPYML_OK : MPYML_ERR_LEAF_REF_RANGE;
}

// vote, other: SAMME only (the weight added to the tree's class and to every other class).
static inline mpyml_err_t mpyml_forest_add_tree(mpyml_forest_t *f, int32_t root, double vote, double other) {
    if (f->shape.kind == MPYML_TREES_BOOST) {
        return MPYML_ERR_BOOST_VALUE;  // boosted trees carry a group: mpyml_forest_add_boost_tree
    }
    if (f->n_trees_set >= f->shape.n_trees) {
        return MPYML_ERR_TOO_MANY_TREES;
    }
    mpyml_err_t err = mpyml_forest_check_root(f, root);
    if (err) {
        return err;
    }
    if (f->shape.kind == MPYML_TREES_SAMME) {
        if (!mpyml_f64_is_finite(vote) || !mpyml_f64_is_finite(other) || vote < 0.0 || other > 0.0) {
            return MPYML_ERR_TREE_WEIGHT;
        }
        f->tree_votes[2 * f->n_trees_set] = vote;
        f->tree_votes[2 * f->n_trees_set + 1] = other;
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
// nan_left: a NaN feature goes left (float32 forests; int16 features have no NaN, so 0 there).
static inline mpyml_err_t mpyml_forest_add_node(mpyml_forest_t *f, uint32_t feature, int32_t threshold_bits,
                                                int32_t left, int32_t right, int nan_left) {
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
    } else if (f->thresholds_i8 != NULL) {
        if (threshold_bits < -128 || threshold_bits > 127 || nan_left) {
            return MPYML_ERR_THRESHOLD_RANGE;
        }
        f->thresholds_i8[node] = (int8_t)threshold_bits;
    } else {
        if (threshold_bits < INT16_MIN || threshold_bits > INT16_MAX || nan_left) {
            return MPYML_ERR_THRESHOLD_RANGE;
        }
        f->thresholds_i16[node] = (int16_t)threshold_bits;
    }
    if (f->features8 != NULL) {
        f->features8[node] = (uint8_t)(feature | (nan_left ? MPYML_TREES_NAN_LEFT8 : 0u));
    } else {
        f->features[node] = (uint16_t)(feature | (nan_left ? MPYML_TREES_NAN_LEFT : 0u));
    }
    f->left[node] = (mpyml_child_t)left;
    f->right[node] = (mpyml_child_t)right;
    f->n_nodes_set++;
    return MPYML_OK;
}

static inline mpyml_err_t mpyml_forest_next_leaf(const mpyml_forest_t *f, uint32_t *leaf) {
    *leaf = f->n_leaves_set;
    return *leaf < f->shape.n_leaves ? MPYML_OK : MPYML_ERR_TOO_MANY_LEAVES;
}

// SOFT_VOTE: the pair at index i.
static inline uint32_t mpyml_pair(const mpyml_forest_t *f, uint32_t i) {
    return f->pairs16 != NULL ? f->pairs16[i] : f->pairs32[i];
}

// SOFT_VOTE: float32(1 / total) of a leaf total, from the ascending table (binary search; the
// total is one of the table's, as every leaf's total was entered when the leaf was loaded).
static inline float mpyml_total_scale(const mpyml_forest_t *f, uint32_t total) {
    uint32_t lo = 0, hi = f->n_totals_set;
    while (hi - lo > 1u) {
        uint32_t mid = (lo + hi) >> 1;
        if (f->totals[mid] <= total) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return f->total_scales[lo];
}

// SOFT_VOTE: n_classes class counts (not all 0); probability = count / sum of counts. Stored as
// pairs of the non-zero classes; the leaf's total enters the table of distinct totals.
static inline mpyml_err_t mpyml_forest_add_leaf_counts(mpyml_forest_t *f, const uint16_t *counts, size_t n) {
    uint32_t leaf;
    mpyml_err_t err = mpyml_forest_next_leaf(f, &leaf);
    if (err) {
        return err;
    }
    if (f->shape.kind != MPYML_TREES_SOFT_VOTE || n != f->shape.n_classes) {
        return MPYML_ERR_LEAF_WIDTH;
    }
    uint32_t total = 0, nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        if (counts[i] > f->shape.max_count) {
            return MPYML_ERR_LEAF_COUNTS;
        }
        total += counts[i];
        nonzero += counts[i] != 0;
    }
    if (total == 0) {
        return MPYML_ERR_LEAF_COUNTS;
    }
    if (nonzero > f->shape.n_pairs - f->n_pairs_set) {
        return MPYML_ERR_LEAF_PAIRS;
    }
    // The table of distinct totals, kept ascending.
    uint32_t at = 0;
    while (at < f->n_totals_set && f->totals[at] < total) {
        at++;
    }
    if (at == f->n_totals_set || f->totals[at] != total) {
        if (f->n_totals_set >= f->shape.n_totals) {
            return MPYML_ERR_LEAF_PAIRS;
        }
        for (uint32_t j = f->n_totals_set; j > at; j--) {
            f->totals[j] = f->totals[j - 1];
            f->total_scales[j] = f->total_scales[j - 1];
        }
        f->totals[at] = total;
        f->total_scales[at] = (float)mpyml_f64_div(1.0, (double)total);
        f->n_totals_set++;
    }
    f->leaf_offsets[leaf] = f->n_pairs_set;
    for (size_t i = 0; i < n; i++) {
        if (counts[i] != 0) {
            nonzero--;
            uint32_t pair = ((uint32_t)counts[i] << f->class_shift) | ((uint32_t)i << 1) | (nonzero == 0 ? 1u : 0u);
            if (f->pairs16 != NULL) {
                f->pairs16[f->n_pairs_set] = (uint16_t)pair;
            } else {
                f->pairs32[f->n_pairs_set] = pair;
            }
            f->n_pairs_set++;
        }
    }
    f->n_leaves_set++;
    return MPYML_OK;
}

// SOFT_EXACT: n_classes float64 probabilities in 0..1, as 16 hex digits of their IEEE-754 bits each.
static inline mpyml_err_t mpyml_forest_add_leaf_exact(mpyml_forest_t *f, const char *hex, size_t len) {
    uint32_t leaf;
    mpyml_err_t err = mpyml_forest_next_leaf(f, &leaf);
    if (err) {
        return err;
    }
    size_t n = f->shape.n_classes;
    if (f->shape.kind != MPYML_TREES_SOFT_EXACT || len != 16 * n) {
        return MPYML_ERR_LEAF_WIDTH;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t high, low;
        if (mpyml_parse_hex32(hex + 16 * i, 8, &high) != MPYML_OK || mpyml_parse_hex32(hex + 16 * i + 8, 8, &low) != MPYML_OK) {
            return MPYML_ERR_BAD_HEX64;
        }
        double p = mpyml_f64_from_bits(((uint64_t)high << 32) | low);
        if (!(p >= 0.0 && p <= 1.0)) {
            return MPYML_ERR_LEAF_PROBA;
        }
        f->leaf_exact[(size_t)leaf * n + i] = p;
    }
    f->n_leaves_set++;
    return MPYML_OK;
}

// HARD_VOTE, SAMME: the tree's class.
static inline mpyml_err_t mpyml_forest_add_leaf_class(mpyml_forest_t *f, uint32_t class_index) {
    uint32_t leaf;
    mpyml_err_t err = mpyml_forest_next_leaf(f, &leaf);
    if (err) {
        return err;
    }
    if (!mpyml_trees_leaf_is_class(&f->shape)) {
        return MPYML_ERR_LEAF_WIDTH;
    }
    if (class_index >= f->shape.n_classes) {
        return MPYML_ERR_CLASS_RANGE;
    }
    f->leaf_classes[leaf] = (uint16_t)class_index;
    f->n_leaves_set++;
    return MPYML_OK;
}

// REGRESSOR: the leaf's value.
static inline mpyml_err_t mpyml_forest_add_leaf_value(mpyml_forest_t *f, float value) {
    uint32_t leaf;
    mpyml_err_t err = mpyml_forest_next_leaf(f, &leaf);
    if (err) {
        return err;
    }
    if (f->shape.kind != MPYML_TREES_REGRESSOR) {
        return MPYML_ERR_LEAF_WIDTH;
    }
    if (!mpyml_is_finite(value)) {
        return MPYML_ERR_NOT_FINITE;
    }
    f->leaf_values[leaf] = value;
    f->n_leaves_set++;
    return MPYML_OK;
}

// BOOST: the binary threshold on the raw score (class 1 when raw > threshold), the scale before the
// link and IsolationForest's offset_.
static inline mpyml_err_t mpyml_forest_set_boost(mpyml_forest_t *f, double threshold, double scale, double offset) {
    if (f->shape.kind != MPYML_TREES_BOOST || !mpyml_f64_is_finite(threshold) || !mpyml_f64_is_finite(scale) ||
        !mpyml_f64_is_finite(offset) || !mpyml_is_finite((float)threshold) || !mpyml_is_finite((float)scale) ||
        !mpyml_is_finite((float)offset)) {
        return MPYML_ERR_BOOST_VALUE;
    }
    f->boost_threshold = threshold;
    f->boost_scale = (float)scale;
    f->boost_offset = (float)offset;
    return MPYML_OK;
}

// A boosted model's value is float32-exact when its library sums in float32.
static inline int mpyml_boost_value_ok(const mpyml_forest_t *f, double v) {
    return mpyml_f64_is_finite(v) && mpyml_is_finite((float)v) && (f->shape.sums64 || (double)(float)v == v);
}

// BOOST: the next group's base score.
static inline mpyml_err_t mpyml_forest_add_base(mpyml_forest_t *f, double base) {
    if (f->shape.kind != MPYML_TREES_BOOST || f->n_base_set >= f->shape.n_groups || !mpyml_boost_value_ok(f, base)) {
        return MPYML_ERR_BOOST_VALUE;
    }
    f->base[f->n_base_set++] = base;
    return MPYML_OK;
}

// BOOST: a tree and the group it adds to.
static inline mpyml_err_t mpyml_forest_add_boost_tree(mpyml_forest_t *f, int32_t root, uint32_t group) {
    if (f->shape.kind != MPYML_TREES_BOOST || group >= f->shape.n_groups) {
        return MPYML_ERR_BOOST_VALUE;
    }
    if (f->n_trees_set >= f->shape.n_trees) {
        return MPYML_ERR_TOO_MANY_TREES;
    }
    mpyml_err_t err = mpyml_forest_check_root(f, root);
    if (err) {
        return err;
    }
    f->tree_groups[f->n_trees_set] = (uint16_t)group;
    f->roots[f->n_trees_set++] = root;
    return MPYML_OK;
}

// BOOST: a leaf's value (float64 bits; float32-exact when the library sums in float32).
static inline mpyml_err_t mpyml_forest_add_leaf_boost(mpyml_forest_t *f, double value) {
    uint32_t leaf;
    mpyml_err_t err = mpyml_forest_next_leaf(f, &leaf);
    if (err) {
        return err;
    }
    if (f->shape.kind != MPYML_TREES_BOOST) {
        return MPYML_ERR_LEAF_WIDTH;
    }
    if (!mpyml_boost_value_ok(f, value)) {
        return MPYML_ERR_BOOST_VALUE;
    }
    f->leaf_values[leaf] = (float)value;
    if (f->shape.sums64) {
        f->leaf_exact[leaf] = value;
    }
    f->n_leaves_set++;
    return MPYML_OK;
}

static inline mpyml_err_t mpyml_forest_check_complete(mpyml_forest_t *f) {
    if (f->n_trees_set != f->shape.n_trees) {
        return MPYML_ERR_MISSING_TREES;
    }
    if (f->n_nodes_set != f->shape.n_nodes) {
        return MPYML_ERR_MISSING_NODES;
    }
    if (f->n_leaves_set != f->shape.n_leaves) {
        return MPYML_ERR_MISSING_LEAVES;
    }
    if (f->shape.kind == MPYML_TREES_SAMME && !(f->weight_sum > 0.0)) {
        return MPYML_ERR_TREE_WEIGHT;
    }
    if (f->shape.kind == MPYML_TREES_BOOST && f->n_base_set != f->shape.n_groups) {
        return MPYML_ERR_BOOST_VALUE;
    }
    if (f->shape.kind == MPYML_TREES_SOFT_VOTE && f->leaf_offsets != NULL) {
        // Leaf references become references to the leaf's first pair (< MAX_PAIRS, so they fit).
        for (uint32_t t = 0; t < f->shape.n_trees; t++) {
            if (f->roots[t] < 0) {
                f->roots[t] = -(int32_t)f->leaf_offsets[-(f->roots[t] + 1)] - 1;
            }
        }
        for (uint32_t i = 0; i < f->shape.n_nodes; i++) {
            if (f->left[i] < 0) {
                f->left[i] = (mpyml_child_t)(-(int32_t)f->leaf_offsets[-(f->left[i] + 1)] - 1);
            }
            if (f->right[i] < 0) {
                f->right[i] = (mpyml_child_t)(-(int32_t)f->leaf_offsets[-(f->right[i] + 1)] - 1);
            }
        }
        f->leaf_offsets = NULL;  // the caller may free its scratch now
    }
    return MPYML_OK;
}

// ---------------------------------------------------------------- prediction

// Trees walked side by side. On x86-64 the walks of MPYML_TREE_LANES trees run in lock step, each
// child chosen without a branch, so the loads of the lanes overlap instead of waiting on each other
// and on mispredicted branches; a lane that reached its leaf stays on its last node (choosing the same
// leaf again) until every lane has. On in-order microcontroller cores those extra steps would only
// cost time, so they walk one tree at a time.
#ifndef MPYML_TREE_LANES
#if defined(__x86_64__)
#define MPYML_TREE_LANES 8
#else
#define MPYML_TREE_LANES 1
#endif
#endif
// Trees per mpyml_forest_leaves call: the caller's stack holds their leaves.
#define MPYML_TREE_BLOCK 32

// Lock-step walk of N lanes from nodes[0 .. N) until each lane's chosen child is a leaf; refs[0 .. N)
// then hold those leaf references. GO_LEFT is an expression of `node`.
#define MPYML_LANES_WALK(N, GO_LEFT) \
    for (;;) { \
        int32_t all_leaves = -1; \
        for (uint32_t lane = 0; lane < (N); lane++) { \
            uint32_t node = nodes[lane]; \
            int32_t left_mask = -(int32_t)(GO_LEFT); \
            int32_t left = f->left[node], right = f->right[node]; \
            int32_t next = right ^ ((left ^ right) & left_mask); \
            nodes[lane] = node + (next < 0 ? 0u : (uint32_t)next); \
            refs[lane] = next; \
            all_leaves &= next; \
        } \
        if (all_leaves < 0) { \
            break; \
        } \
    }

// Walks the trees lane_trees[0 .. MPYML_TREE_LANES) of the block (their roots are nodes) side by side
// and stores their leaves.
#define MPYML_LANES_LEAVES(GO_LEFT) \
    { \
        uint32_t nodes[MPYML_TREE_LANES]; \
        int32_t refs[MPYML_TREE_LANES]; \
        for (uint32_t lane = 0; lane < MPYML_TREE_LANES; lane++) { \
            nodes[lane] = (uint32_t)roots[lane_trees[lane]]; \
        } \
        MPYML_LANES_WALK(MPYML_TREE_LANES, GO_LEFT) \
        for (uint32_t lane = 0; lane < MPYML_TREE_LANES; lane++) { \
            leaves[lane_trees[lane]] = (uint16_t)(-(refs[lane] + 1)); \
        } \
    }

// Leaves of trees t0 .. t0 + n into leaves[0 .. n): a tree whose root is a leaf at once, the others
// MPYML_TREE_LANES at a time, and the block's last few of them one by one.
#define MPYML_LEAVES(GO_LEFT) \
    { \
        uint32_t lane_trees[MPYML_TREE_LANES], n_lanes = 0; \
        for (uint32_t t = 0; t < n; t++) { \
            if (roots[t] < 0) { \
                leaves[t] = (uint16_t)(-(roots[t] + 1)); \
                continue; \
            } \
            lane_trees[n_lanes++] = t; \
            if (n_lanes == MPYML_TREE_LANES) { \
                MPYML_LANES_LEAVES(GO_LEFT) \
                n_lanes = 0; \
            } \
        } \
        for (uint32_t i = 0; MPYML_TREE_LANES > 1 && i < n_lanes; i++) { \
            uint32_t nodes[1]; \
            int32_t refs[1]; \
            nodes[0] = (uint32_t)roots[lane_trees[i]]; \
            MPYML_LANES_WALK(1, GO_LEFT) \
            leaves[lane_trees[i]] = (uint16_t)(-(refs[0] + 1)); \
        } \
        return n; \
    }

// As scikit-learn: left when x <= threshold; a NaN goes where the node's NaN bit says.
// !(v > t) is (v <= t or v is NaN).
#define MPYML_GO_LEFT_F32(FEATURE, NAN_BIT) \
    ((FEATURE) & (NAN_BIT) ? !(xf[(FEATURE) & ~(NAN_BIT)] > thresholds[node]) \
                           : xf[(FEATURE) & ~(NAN_BIT)] <= thresholds[node])

// 1 when a float32 row holds a NaN (its walks then follow each node's NaN direction).
MPYML_HOT static inline int mpyml_row_has_nan(const mpyml_forest_t *f, const void *x) {
    uint32_t nan = 0;
    if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
        const float *xf = (const float *)x;
        for (uint32_t i = 0; i < f->shape.n_features; i++) {
            nan |= (mpyml_f32_to_bits(xf[i]) & 0x7fffffffu) > 0x7f800000u;
        }
    }
    return (int)nan;
}

// The leaves that row x reaches in the trees from t0 on, at most MPYML_TREE_BLOCK of them, into
// leaves[]; returns how many. `nan`: mpyml_row_has_nan(f, x). Leaf references fit 16 bits
// (MPYML_TREES_MAX_LEAVES, MPYML_TREES_MAX_PAIRS).
MPYML_HOT static inline uint32_t mpyml_forest_leaves(const mpyml_forest_t *f, const void *x, int nan, uint32_t t0,
                                                     uint16_t *leaves) {
    uint32_t n = f->shape.n_trees - t0 < MPYML_TREE_BLOCK ? f->shape.n_trees - t0 : MPYML_TREE_BLOCK;
    const int32_t *roots = f->roots + t0;
    const uint8_t *features8 = f->features8;
    const uint16_t *features = f->features;
    if (f->shape.dtype == MPYML_DTYPE_FLOAT32) {
        const float *xf = (const float *)x, *thresholds = f->thresholds_f32;
        if (nan) {
            if (features8 != NULL) {
                MPYML_LEAVES(MPYML_GO_LEFT_F32((uint32_t)features8[node], MPYML_TREES_NAN_LEFT8))
            }
            MPYML_LEAVES(MPYML_GO_LEFT_F32((uint32_t)features[node], MPYML_TREES_NAN_LEFT))
        }
        // Without NaN in the row, no node's NaN direction matters.
        if (features8 != NULL) {
            MPYML_LEAVES(xf[features8[node] & ~MPYML_TREES_NAN_LEFT8] <= thresholds[node])
        }
        MPYML_LEAVES(xf[features[node] & ~MPYML_TREES_NAN_LEFT] <= thresholds[node])
    }
    const int16_t *xi = (const int16_t *)x;
    const int8_t *thresholds8 = f->thresholds_i8;
    const int16_t *thresholds16 = f->thresholds_i16;
    if (features8 != NULL) {
        if (thresholds8 != NULL) {
            MPYML_LEAVES(xi[features8[node]] <= thresholds8[node])
        }
        MPYML_LEAVES(xi[features8[node]] <= thresholds16[node])
    }
    if (thresholds8 != NULL) {
        MPYML_LEAVES(xi[features[node]] <= thresholds8[node])
    }
    MPYML_LEAVES(xi[features[node]] <= thresholds16[node])
}

// Adds every tree's vote (classifiers) or value (regressors) for one row x
// into out[0 .. n_outputs), unscaled, in float32. Trees are summed in file order.
// SAMME forests add one vote per tree (their exact decision is mpyml_samme_decision).
static inline void mpyml_forest_sum(const mpyml_forest_t *f, const void *x, float *out) {
    size_t n_out = mpyml_trees_n_outputs(&f->shape);
    for (size_t i = 0; i < n_out; i++) {
        out[i] = 0.0f;
    }
    uint16_t leaves[MPYML_TREE_BLOCK];
    int nan = mpyml_row_has_nan(f, x);
    for (uint32_t t0 = 0; t0 < f->shape.n_trees; t0 += MPYML_TREE_BLOCK) {
        uint32_t n_block = mpyml_forest_leaves(f, x, nan, t0, leaves);
        for (uint32_t t = 0; t < n_block; t++) {
            uint32_t leaf = leaves[t];
            switch (f->shape.kind) {
                case MPYML_TREES_SOFT_VOTE: {
                    // `leaf` is the leaf's first pair; classes without a pair have count 0 and add +0.0f.
                    uint32_t shift = f->class_shift, total = 0, i = leaf, pair;
                    do {
                        pair = mpyml_pair(f, i++);
                        total += pair >> shift;
                    } while (!(pair & 1u));
                    float scale = mpyml_total_scale(f, total);
                    i = leaf;
                    do {
                        pair = mpyml_pair(f, i++);
                        float p = (float)(pair >> shift) * scale;
                        out[(pair >> 1) & ((1u << (shift - 1u)) - 1u)] += p;
                    } while (!(pair & 1u));
                    break;
                }
                case MPYML_TREES_SOFT_EXACT: {
                    const double *proba = &f->leaf_exact[(size_t)leaf * n_out];
                    for (size_t i = 0; i < n_out; i++) {
                        out[i] += (float)proba[i];
                    }
                    break;
                }
                case MPYML_TREES_REGRESSOR:
                    out[0] += f->leaf_values[leaf];
                    break;
                default:
                    out[f->leaf_classes[leaf]] += 1.0f;
                    break;
            }
        }
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

// SAMME: scikit-learn's decision_function of every class into f->exact_sums:
// per class the sum over trees (in order, float64) of `vote` for the tree's class and `other`
// for the rest, divided by the weight sum.
static inline void mpyml_samme_decision(const mpyml_forest_t *f, const void *x) {
    double *d = f->exact_sums;
    size_t n = f->shape.n_classes;
    for (size_t c = 0; c < n; c++) {
        d[c] = 0.0;
    }
    uint16_t leaves[MPYML_TREE_BLOCK];
    int nan = mpyml_row_has_nan(f, x);
    for (uint32_t t0 = 0; t0 < f->shape.n_trees; t0 += MPYML_TREE_BLOCK) {
        uint32_t n_block = mpyml_forest_leaves(f, x, nan, t0, leaves);
        for (uint32_t i = 0; i < n_block; i++) {
            uint32_t t = t0 + i, k = f->leaf_classes[leaves[i]];
            double vote = f->tree_votes[2 * t], other = f->tree_votes[2 * t + 1];
            for (size_t c = 0; c < n; c++) {
                d[c] += c == k ? vote : other;
            }
        }
    }
    for (size_t c = 0; c < n; c++) {
        d[c] = mpyml_f64_div(d[c], f->weight_sum);
    }
}

// Soft voting: scikit-learn's predict_proba of class c (float64 sum of the trees' leaf
// probabilities in tree order, divided by n_trees).
static inline double mpyml_soft_exact(const mpyml_forest_t *f, const void *x, uint32_t c) {
    size_t n = f->shape.n_classes;
    double sum = 0.0;
    uint16_t leaves[MPYML_TREE_BLOCK];
    int nan = mpyml_row_has_nan(f, x);
    for (uint32_t t0 = 0; t0 < f->shape.n_trees; t0 += MPYML_TREE_BLOCK) {
        uint32_t n_block = mpyml_forest_leaves(f, x, nan, t0, leaves);
        for (uint32_t t = 0; t < n_block; t++) {
            uint32_t leaf = leaves[t];
            double p;
            if (f->shape.kind == MPYML_TREES_SOFT_EXACT) {
                p = f->leaf_exact[(size_t)leaf * n + c];
            } else {
                uint32_t shift = f->class_shift, total = 0, count = 0, i = leaf, pair;
                do {
                    pair = mpyml_pair(f, i++);
                    total += pair >> shift;
                    if (((pair >> 1) & ((1u << (shift - 1u)) - 1u)) == c) {
                        count = pair >> shift;
                    }
                } while (!(pair & 1u));
                p = mpyml_f64_div((double)count, (double)total);
            }
            sum += p;
        }
    }
    return mpyml_f64_div(sum, (double)f->shape.n_trees);
}

// Soft voting: the class of the float32 sums unless another class lies within their error bound
// of it; then the classes within the bound are decided by scikit-learn's float64 arithmetic.
// Each float32 leaf probability is within 2**-23 relative of scikit-learn's, and each of the
// n_trees float32 additions of nonnegative terms errs by at most 2**-24 of the final sum, so
// |sum32 - sum64| <= (n_trees + 2) * 2**-24 * sum32 (plus float64's far smaller error); the
// bound used is twice that.
static inline uint32_t mpyml_soft_class(const mpyml_forest_t *f, const void *x, const float *sums) {
    size_t n = f->shape.n_classes;
    uint32_t best = mpyml_argmax(sums, n);
    float slack = (float)(f->shape.n_trees + 4) * 1.1920929e-7f;  // (n_trees + 4) * 2**-23
    int close = 0;
    for (size_t c = 0; c < n && !close; c++) {
        close = c != best && sums[best] - sums[c] <= slack * (sums[best] + sums[c]);
    }
    if (!close) {
        return best;
    }
    uint32_t exact_best = 0;
    double exact_max = -1.0;
    for (size_t c = 0; c < n; c++) {
        if (sums[best] - sums[c] <= slack * (sums[best] + sums[c])) {
            double p = mpyml_soft_exact(f, x, (uint32_t)c);
            if (p > exact_max) {
                exact_max = p;
                exact_best = (uint32_t)c;
            }
        }
    }
    return exact_best;
}

// ---------------------------------------------------------------- gradient boosting

// |v| by clearing the sign bit: no branch to mispredict in the summing loop (and |-0.0| is +0.0).
static inline float mpyml_absf(float v) {
    return mpyml_f32_from_bits(mpyml_f32_to_bits(v) & 0x7fffffffu);
}

// The fast path: per group the float32 sum (base first, then the trees in file order) into
// f->sums[0 .. n_groups) and the float32 sum of magnitudes into f->sums[n_groups .. 2 n_groups).
static inline void mpyml_boost_sum32(const mpyml_forest_t *f, const void *x) {
    uint32_t n = f->shape.n_groups;
    float *sums = f->sums, *mags = f->sums + n;
    for (uint32_t g = 0; g < n; g++) {
        sums[g] = (float)f->base[g];
        mags[g] = mpyml_absf(sums[g]);
    }
    uint16_t leaves[MPYML_TREE_BLOCK];
    int nan = mpyml_row_has_nan(f, x);
    for (uint32_t t0 = 0; t0 < f->shape.n_trees; t0 += MPYML_TREE_BLOCK) {
        uint32_t n_block = mpyml_forest_leaves(f, x, nan, t0, leaves);
        if (n == 1) {
            // One group (regressors, binary classifiers): the sums stay in registers, not memory.
            float sum = sums[0], mag = mags[0];
            for (uint32_t i = 0; i < n_block; i++) {
                float v = f->leaf_values[leaves[i]];
                sum += v;
                mag += mpyml_absf(v);
            }
            sums[0] = sum;
            mags[0] = mag;
            continue;
        }
        for (uint32_t i = 0; i < n_block; i++) {
            float v = f->leaf_values[leaves[i]];
            uint32_t g = f->tree_groups[t0 + i];
            sums[g] += v;
            mags[g] += mpyml_absf(v);
        }
    }
}

// The library's raw scores into f->exact_sums: float64 sums from the base in tree order (sums64),
// else the float32 sums (which are the library's).
static inline void mpyml_boost_raw(const mpyml_forest_t *f, const void *x) {
    uint32_t n = f->shape.n_groups;
    double *raw = f->exact_sums;
    if (!f->shape.sums64) {
        mpyml_boost_sum32(f, x);
        for (uint32_t g = 0; g < n; g++) {
            raw[g] = (double)f->sums[g];
        }
        return;
    }
    for (uint32_t g = 0; g < n; g++) {
        raw[g] = f->base[g];
    }
    uint16_t leaves[MPYML_TREE_BLOCK];
    int nan = mpyml_row_has_nan(f, x);
    for (uint32_t t0 = 0; t0 < f->shape.n_trees; t0 += MPYML_TREE_BLOCK) {
        uint32_t n_block = mpyml_forest_leaves(f, x, nan, t0, leaves);
        for (uint32_t i = 0; i < n_block; i++) {
            raw[f->tree_groups[t0 + i]] += f->leaf_exact[leaves[i]];
        }
    }
}

// The library's predict: binary, class 1 when raw > threshold; multiclass, the first largest raw score.
// With float64 library sums the float32 sums decide unless the decision lies within their error
// bound, (n_trees + 4) * 2**-23 times the magnitudes summed (each float32 leaf value is within 2**-24
// relative of the library's and each addition errs by at most 2**-24 of the magnitudes' sum); then
// the float64 sums decide, exactly as the library.
static inline uint32_t mpyml_boost_class(const mpyml_forest_t *f, const void *x) {
    uint32_t n = f->shape.n_groups;
    const float *sums = f->sums, *mags = f->sums + n;
    mpyml_boost_sum32(f, x);
    if (!f->shape.sums64) {
        return n == 1 ? (double)sums[0] > f->boost_threshold : mpyml_argmax(sums, n);
    }
    float slack = (float)(f->shape.n_trees + 4) * 1.1920929e-7f;  // (n_trees + 4) * 2**-23
    if (n == 1) {
        float t32 = (float)f->boost_threshold;
        float d = sums[0] - t32;
        float bound = slack * (mags[0] + mpyml_absf(t32));
        if (d > bound || -d > bound) {
            return d > 0.0f;
        }
        mpyml_boost_raw(f, x);
        return f->exact_sums[0] > f->boost_threshold;
    }
    uint32_t best = mpyml_argmax(sums, n);
    int close = 0;
    for (uint32_t c = 0; c < n && !close; c++) {
        close = c != best && sums[best] - sums[c] <= slack * (mags[best] + mags[c]);
    }
    if (!close) {
        return best;
    }
    mpyml_boost_raw(f, x);
    best = 0;
    for (uint32_t c = 1; c < n; c++) {
        if (f->exact_sums[c] > f->exact_sums[best]) {
            best = c;
        }
    }
    return best;
}

// Class probabilities from the library's raw scores rounded to float32 (times the scale):
// binary [sigmoid(-z), sigmoid(z)], multiclass the softmax, in float32.
static inline void mpyml_boost_proba(const mpyml_forest_t *f, const void *x, float *out) {
    uint32_t n = f->shape.n_groups;
    mpyml_boost_raw(f, x);
    if (n == 1) {
        float z = (float)f->exact_sums[0] * f->boost_scale;
        out[0] = mpyml_sigmoidf(-z);
        out[1] = mpyml_sigmoidf(z);
        return;
    }
    for (uint32_t g = 0; g < n; g++) {
        out[g] = (float)f->exact_sums[g] * f->boost_scale;
    }
    mpyml_softmaxf(out, n);
}

// IsolationForest's score_samples, -2**(-depths / denominator): -e**(float32(depths) * scale * ln 2).
static inline float mpyml_boost_score(const mpyml_forest_t *f, const void *x) {
    mpyml_boost_raw(f, x);
    float z = (float)f->exact_sums[0] * f->boost_scale;
    return -mpyml_expf(z * 0.6931472f);
}

// Boosting's decision_function into out[0 .. n_groups): the library's raw scores rounded to float32;
// IsolationForest: score_samples - offset_.
static inline void mpyml_boost_decision(const mpyml_forest_t *f, const void *x, float *out) {
    if (f->shape.link == MPYML_LINK_ISOLATION) {
        out[0] = mpyml_boost_score(f, x) - f->boost_offset;
        return;
    }
    mpyml_boost_raw(f, x);
    for (uint32_t g = 0; g < f->shape.n_groups; g++) {
        out[g] = (float)f->exact_sums[g];
    }
}

// Regression: link(scale * raw) in float32 from the library's raw score.
static inline float mpyml_boost_value(const mpyml_forest_t *f, const void *x) {
    mpyml_boost_raw(f, x);
    float z = (float)f->exact_sums[0] * f->boost_scale;
    if (f->shape.link == MPYML_LINK_EXP) {
        return mpyml_expf(z);
    }
    if (f->shape.link == MPYML_LINK_LOGISTIC) {
        return mpyml_sigmoidf(z);
    }
    return z;
}

// Class index of one row; uses the forest's own scratch, so not reentrant.
static inline uint32_t mpyml_forest_predict_class(const mpyml_forest_t *f, const void *x) {
    size_t n = f->shape.n_classes;
    if (f->shape.kind == MPYML_TREES_BOOST) {
        return mpyml_boost_class(f, x);
    }
    if (f->shape.kind == MPYML_TREES_SAMME) {
        mpyml_samme_decision(f, x);
        uint32_t best = 0;
        for (size_t c = 1; c < n; c++) {
            if (f->exact_sums[c] > f->exact_sums[best]) {
                best = (uint32_t)c;
            }
        }
        return best;
    }
    mpyml_forest_sum(f, x, f->sums);
    if (mpyml_trees_is_soft(&f->shape)) {
        return mpyml_soft_class(f, x, f->sums);
    }
    return mpyml_argmax(f->sums, n);
}

// SAMME probabilities: softmax of decision / (n_classes - 1) (binary: of [-d, d] / 2 with
// d = decision[1] - decision[0]), as scikit-learn's _compute_proba_from_decision, in float32.
static inline void mpyml_samme_proba(const mpyml_forest_t *f, const void *x, float *out) {
    size_t n = f->shape.n_classes;
    if (n == 1) {
        out[0] = 1.0f;
        return;
    }
    mpyml_samme_decision(f, x);
    if (n == 2) {
        float d = (float)(f->exact_sums[1] - f->exact_sums[0]) * 0.5f;
        out[0] = -d;
        out[1] = d;
    } else {
        float scale = mpyml_recipf((float)(n - 1));
        for (size_t c = 0; c < n; c++) {
            out[c] = (float)f->exact_sums[c] * scale;
        }
    }
    mpyml_softmaxf(out, (uint32_t)n);
}

// Class probabilities (classifiers) or the predicted value (regressors) of one row.
static inline void mpyml_forest_predict_proba(const mpyml_forest_t *f, const void *x, float *out) {
    if (f->shape.kind == MPYML_TREES_SAMME) {
        mpyml_samme_proba(f, x, out);
        return;
    }
    if (f->shape.kind == MPYML_TREES_BOOST) {
        mpyml_boost_proba(f, x, out);
        return;
    }
    mpyml_forest_sum(f, x, out);
    size_t n_out = mpyml_trees_n_outputs(&f->shape);
    for (size_t i = 0; i < n_out; i++) {
        out[i] *= f->tree_weight;
    }
}

static inline float mpyml_forest_predict_value(const mpyml_forest_t *f, const void *x) {
    if (f->shape.kind == MPYML_TREES_BOOST) {
        return mpyml_boost_value(f, x);
    }
    mpyml_forest_sum(f, x, f->sums);
    return f->sums[0] * f->tree_weight;
}

#endif // MPYML_TREES_H
