# The two commands a fresh machine needs (see README.md):
#   make demo   train, export, build, run on the unix port, report
#   make test   everything the tests need, then all tests
PYTHON ?= python3
ARCH ?= x64

.PHONY: demo test bench build setup-host setup-test

setup-host:
	$(PYTHON) -m pip install --quiet -e ".[examples]"

# Tests also build the Cortex-M and RISC-V targets, build MicroPython firmware for emulated boards
# and run it under qemu (Debian packages below), and compare against m2cgen/everywhereml.
TEST_DEBS = gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf \
	qemu-system-arm qemu-system-misc
setup-test: setup-host
	$(PYTHON) -m pip install --quiet -e ".[test,bench,examples,nets,boosting]"
	@dpkg -s $(TEST_DEBS) >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(TEST_DEBS) >/dev/null; }

demo: setup-host
	$(PYTHON) -m mpyml demo

# pytest's exit 5 means it collected no tests: that is a failure here.
test: setup-test
	@$(PYTHON) -m pytest -q; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

bench: setup-test
	$(PYTHON) benchmarks/trees.py

# make build ARCH=armv7m FOR="model.csv ...": a trimmed emltrees for those model files only.
build: setup-host
	$(PYTHON) -m mpyml build --arch $(ARCH) $(if $(FOR),--for $(FOR))
