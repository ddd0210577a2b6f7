# The two commands a fresh machine needs (see README.md):
#   make demo   train, export, build, run on the unix port, report
#   make test   everything the tests need, then all tests
PYTHON ?= python3
ARCH ?= x64

.PHONY: demo test bench build setup-host setup-test

setup-host:
	$(PYTHON) -m pip install --quiet -e ".[examples]"

# Tests also build the Cortex-M targets (Debian's gcc-arm-none-eabi) and compare against m2cgen/everywhereml.
setup-test: setup-host
	$(PYTHON) -m pip install --quiet -e ".[test,bench,examples,nets]"
	@command -v arm-none-eabi-gcc >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq gcc-arm-none-eabi >/dev/null; }

demo: setup-host
	$(PYTHON) -m mpyml demo

# pytest's exit 5 means it collected no tests: that is a failure here.
test: setup-test
	@$(PYTHON) -m pytest -q; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

bench: setup-test
	$(PYTHON) benchmarks/trees.py

build: setup-host
	$(PYTHON) -m mpyml build --arch $(ARCH)
