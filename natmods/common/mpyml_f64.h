// Float64 helpers without libm and without double division or multiplication:
// bit access, and division in integers (libgcc's divdf3 does not link in natmods).
// Double addition, subtraction, comparison and conversion are libgcc members
// that natmods link on every target. Portable C99, no MicroPython headers.
#ifndef MPYML_F64_H
#define MPYML_F64_H

#include <stdint.h>

static inline uint64_t mpyml_f64_to_bits(double d) {
    union { uint64_t u; double d; } v;
    v.d = d;
    return v.u;
}

static inline double mpyml_f64_from_bits(uint64_t bits) {
    union { uint64_t u; double d; } v;
    v.u = bits;
    return v.d;
}

static inline int mpyml_f64_is_finite(double d) {
    return ((mpyml_f64_to_bits(d) >> 52) & 0x7ffu) != 0x7ffu;
}

// Mantissa with its leading bit (bit 52) and biased exponent of a finite non-zero |d|, subnormals normalized.
static inline void mpyml_f64_split(uint64_t bits, uint64_t *mantissa, int32_t *exponent) {
    int32_t e = (int32_t)((bits >> 52) & 0x7ffu);
    uint64_t m = bits & 0xfffffffffffffull;
    if (e == 0) {
        e = 1;
        while (!(m & 0x10000000000000ull)) {
            m <<= 1;
            e--;
        }
    } else {
        m |= 0x10000000000000ull;
    }
    *mantissa = m;
    *exponent = e;
}

// a / b rounded to nearest (ties to even) as IEEE-754 double division, for finite a and
// finite b > 0, by long division in integers (libgcc's divdf3 does not link in natmods).
// Subnormal operands and quotients are rounded correctly too; a quotient past the largest
// double is +-infinity.
static inline double mpyml_f64_div(double a, double b) {
    uint64_t ua = mpyml_f64_to_bits(a);
    uint64_t sign = ua & 0x8000000000000000ull;
    ua ^= sign;
    if (ua == 0) {
        return a;
    }
    uint64_t ma, mb;
    int32_t ea, eb;
    mpyml_f64_split(ua, &ma, &ea);
    mpyml_f64_split(mpyml_f64_to_bits(b), &mb, &eb);
    int32_t e = ea - eb + 1023;
    if (ma < mb) {
        ma <<= 1;
        e--;
    }
    // ma / mb in [1, 2): 54 quotient bits (the leading 1, 52 more, one guard bit), then the sticky remainder.
    uint64_t q = 0, r = ma;
    for (int i = 0; i < 54; i++) {
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    int sticky = r != 0;
    if (e <= 0) {
        // Subnormal: the quotient keeps 1 - e fewer bits; the bits shifted out join the sticky bit.
        uint32_t shift = (uint32_t)(1 - e);
        if (shift >= 64) {
            sticky |= q != 0;
            q = 0;
        } else {
            sticky |= (q & ((1ull << shift) - 1u)) != 0;
            q >>= shift;
        }
    }
    uint64_t mantissa = q >> 1;
    if ((q & 1u) && (sticky || (mantissa & 1u))) {
        mantissa++;
    }
    if (e <= 0) {
        // Bit 52 set after rounding up is the smallest normal number, which these bits encode as well.
        return mpyml_f64_from_bits(sign | mantissa);
    }
    if (mantissa == 0x20000000000000ull) {
        mantissa >>= 1;
        e++;
    }
    if (e >= 0x7ff) {
        return mpyml_f64_from_bits(sign | 0x7ff0000000000000ull);
    }
    return mpyml_f64_from_bits(sign | ((uint64_t)e << 52) | (mantissa & 0xfffffffffffffull));
}

// A non-zero integer v < 2**53 as a double (exact), without libgcc's __floatundidf.
static inline double mpyml_f64_from_u53(uint64_t v) {
    int32_t top = 52;
    while (!((v >> top) & 1u)) {
        top--;
    }
    uint64_t mantissa = v << (52 - top);
    return mpyml_f64_from_bits(((uint64_t)(1023 + top) << 52) | (mantissa & 0xfffffffffffffull));
}

// sqrt(n) * 2**half_exponent rounded to nearest (ties to even) as IEEE-754 double sqrt, for
// 0 < n < 2**62 and a normal result, by the digit-by-digit square root in integers: 54 root
// bits (the pairs of n's bits, then pairs of zeros), the remainder as the sticky bit.
static inline double mpyml_f64_sqrt_u62(uint64_t n, int32_t half_exponent) {
    int32_t top = 61;
    while (!((n >> top) & 1u)) {
        top--;
    }
    int32_t pairs = top / 2 + 1;       // bits of floor(sqrt(n))
    int32_t extra = 54 - pairs;        // pairs of zeros after n's
    uint64_t root = 0, rem = 0;        // rem <= 2 root < 2**55 throughout
    for (int32_t i = pairs - 1; i >= -extra; i--) {
        rem = (rem << 2) | (i >= 0 ? (n >> (2 * i)) & 3u : 0u);
        uint64_t trial = (root << 2) | 1u;
        root <<= 1;
        if (rem >= trial) {
            rem -= trial;
            root |= 1u;
        }
    }
    uint64_t mantissa = root >> 1;     // 53 bits: sqrt(n) = mantissa * 2**(1 - extra)
    if ((root & 1u) && (rem != 0 || (mantissa & 1u))) {
        mantissa++;
    }
    int32_t e = 1023 + 53 - extra + half_exponent;
    if (mantissa == 0x20000000000000ull) {
        mantissa >>= 1;
        e++;
    }
    return mpyml_f64_from_bits(((uint64_t)e << 52) | (mantissa & 0xfffffffffffffull));
}

// d * d rounded to nearest (ties to even) as IEEE-754 double multiplication, for 2**-500 <= |d|
// <= 2**500 or d == 0 (no overflow or subnormal result), in integers (libgcc's muldf3 stays out):
// the 106-bit product of the mantissas from 32-bit halves.
static inline double mpyml_f64_square(double d) {
    uint64_t bits = mpyml_f64_to_bits(d) & 0x7fffffffffffffffull;
    if (bits == 0) {
        return 0.0;
    }
    uint64_t m;
    int32_t e;
    mpyml_f64_split(bits, &m, &e);
    uint64_t mh = m >> 32, ml = m & 0xffffffffu;
    uint64_t lo = ml * ml;
    uint64_t mid = 2u * mh * ml;               // below 2**54
    uint64_t hi = mh * mh + (mid >> 32);
    uint64_t mid_lo = mid << 32;
    lo += mid_lo;
    hi += lo < mid_lo;                         // the carry
    int32_t top = hi >> 41 ? 105 : 104;        // m * m lies in [2**104, 2**106)
    int32_t shift = top - 52;                  // 52 or 53: the bits below the 53-bit mantissa
    uint64_t mantissa = (hi << (64 - shift)) | (lo >> shift);
    uint64_t round = (lo >> (shift - 1)) & 1u;
    uint64_t sticky = lo & ((1ull << (shift - 1)) - 1u);
    if (round && (sticky != 0 || (mantissa & 1u))) {
        mantissa++;
    }
    int32_t exponent = top + 2 * e - 1127;    // (m * 2**(e - 1075))**2, leading bit at 2**(top + 2e - 2150)
    if (mantissa == 0x20000000000000ull) {
        mantissa >>= 1;
        exponent++;
    }
    return mpyml_f64_from_bits(((uint64_t)exponent << 52) | (mantissa & 0xfffffffffffffull));
}

// sqrt(v) rounded to nearest as IEEE-754 double sqrt, for a normal v > 0.
static inline double mpyml_f64_sqrt(double v) {
    uint64_t m;
    int32_t e;
    mpyml_f64_split(mpyml_f64_to_bits(v), &m, &e);
    int32_t x = e - 1075;                      // v = m * 2**x
    if (x & 1) {
        m <<= 1;
        x -= 1;
    }
    return mpyml_f64_sqrt_u62(m, x / 2);
}

#endif // MPYML_F64_H
