"""emlneighbors builds for the Cortex-M targets with only single-precision soft-float, 64-bit
shift helpers and double addition / comparison / float32-to-double conversion from libgcc (the
float64 vote on near-ties, as mpyml_trees.h): no double multiply or division, no 64-bit division."""

import pytest

from mpyml import build

# libgcc members the distance code may pull in on FPU-less targets: float32 add / multiply /
# compare / conversions, 64-bit shifts (armv6m) for the exact uint64 -> float32 rounding, and
# armv6m's switch-table dispatch (the error-message switch).
ALLOWED = {"_arm_cmpsf2.o", "_ashldi3.o", "_lshrdi3.o", "_clzsi2.o", "addsf3.o", "eqsf2.o", "floatunsisf.o",
           "floatsisf.o", "gesf2.o", "lesf2.o", "mulsf3.o", "subsf3.o", "_arm_addsubsf3.o", "_arm_muldivsf3.o",
           "_arm_unordsf2.o", "unordsf2.o", "_arm_fixunssfsi.o", "fixunssfsi.o", "_arm_fixsfsi.o", "fixsfsi.o",
           "_arm_floatsisf.o", "_arm_floatunsisf.o", "_thumb1_case_sqi.o", "_thumb1_case_uqi.o",
           "_muldi3.o",  # the C record reader's decimal numbers (uint64 times 10), at load time only
           # scikit-learn's float64 sums on near-ties (mpyml_neighbors_sum64): add, subtract, compare, widen
           "adddf3.o", "subdf3.o", "_arm_addsubdf3.o", "eqdf2.o", "gedf2.o", "ledf2.o", "_arm_cmpdf2.o",
           "extendsfdf2.o"}


@pytest.mark.parametrize("arch", ["armv6m", "armv7m", "armv7emsp"])
def test_cortex_m_build_links_only_single_precision_helpers(arch):
    path = build.build("emlneighbors", arch)
    assert path.stat().st_size > 0
    members = {p.name for p in (build.BUILD_DIR / arch / "emlneighbors" / "libgcc").glob("*.o")}
    assert members <= ALLOWED, sorted(members - ALLOWED)
    forbidden = ("muldf3", "divdf3", "dfsf", "sidf", "didf", "divdi3", "moddi3", "ldivmod")
    assert not [m for m in members if any(f in m for f in forbidden)]
