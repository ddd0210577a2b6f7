# Build rules shared by every mpyml natmod. A natmod's Makefile sets MOD and SRC
# and includes this file; `mpyml build` (exporter/mpyml/build.py) passes MPY_DIR,
# ARCH, BUILD, MPYML_DEFINES and, for targets without an FPU, LINK_OBJS: libgcc members that
# MicroPython's mpy_ld must link as plain object files.
NATMODS_DIR := $(dir $(lastword $(MAKEFILE_LIST)))
CFLAGS_EXTRA += -I$(NATMODS_DIR)common
# Feature defines of a trimmed build (`mpyml build --for`: see natmods/emltrees/emltrees.c).
CFLAGS_EXTRA += $(MPYML_DEFINES)
# No libc in a natmod: keep gcc from turning loops into memset/strlen calls.
CFLAGS_EXTRA += -fno-tree-loop-distribute-patterns
# Emit functions in source order, so mpy_init (first in every glue file) stays
# within reach of the 2 KB jump mpy_ld puts at the start of an armv6m module.
CFLAGS_EXTRA += -fno-toplevel-reorder

# RISC-V gcc aligns string constants to 4 bytes unless told the natural (byte) alignment will do.
ifeq ($(ARCH),rv32imc)
CFLAGS_EXTRA += -malign-data=natural
endif

include $(MPY_DIR)/py/dynruntime.mk

# Objects also depend on the shared headers and these rules, which dynruntime.mk does not track.
$(filter %.o,$(SRC_O)): $(wildcard $(NATMODS_DIR)common/*.h) $(NATMODS_DIR)natmod.mk

# A second rule for the same target appends LINK_OBJS after the module's own objects.
$(BUILD)/$(MOD).native.mpy: $(LINK_OBJS)

# Compile only: lets the build find which libgcc members the objects need.
objects: $(SRC_O)
.PHONY: objects
