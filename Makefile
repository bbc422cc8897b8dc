# PenControl: one command runs the job on the simulator (make demo), one passes the tests
# (make test). Each does its own set-up (make deps installs the system packages when missing).
SWIFT ?= swift
SCRATCH ?= .build

.PHONY: all deps generate spec-check build test unit-test embedded-check sr-check demo \
	bench bench-check fuzz fuzz-smoke fault-matrix sanitize tsan asan lint format ci clean

all: build

deps:
	@scripts/deps.sh

# Regenerate PenWire's catalogue code and the golden vectors from Firmware-Specs/messages.json.
generate:
	python3 scripts/wirespec.py generate

# Fails when generated code or vectors are stale, or the recorded catalogue hash is wrong.
spec-check:
	python3 scripts/wirespec.py check

build: deps
	$(SWIFT) build --scratch-path $(SCRATCH)

# The pure core in Embedded Swift with -no-allocations, for both microcontroller triples.
embedded-check:
	scripts/embedded-check.sh

# Every SR-nnn in Firmware-Specs is named by at least one test.
sr-check:
	scripts/sr-check.sh

unit-test: deps
	$(SWIFT) test --scratch-path $(SCRATCH) --disable-xctest

test: deps spec-check embedded-check sr-check unit-test

# The whole job on the simulator with a temporary database: calibrate, screen, test patch,
# treat with the forehead preset, records, report, audit (scripts/demo.sh).
demo: build
	SCRATCH=$(SCRATCH) scripts/demo.sh

# Every injectable fault in every session state; rewrites Simulator/fault-matrix.md (same seeds,
# same table).
fault-matrix: deps
	PENCONTROL_FAULT_MATRIX=$(CURDIR)/Simulator/fault-matrix.md $(SWIFT) test --scratch-path $(SCRATCH) --disable-xctest --filter FaultMatrix

# The driver, USB, simulator, clinic and end-to-end tests under ThreadSanitizer and
# AddressSanitizer (scripts/sanitize.sh; own scratch folders .build-tsan and .build-asan).
sanitize: deps
	scripts/sanitize.sh all

tsan: deps
	scripts/sanitize.sh thread

asan: deps
	scripts/sanitize.sh address

bench: deps
	scripts/bench.sh run

bench-check: deps
	scripts/bench.sh check

fuzz: deps
	scripts/fuzz.sh run $${FUZZ_SECONDS:-60}

fuzz-smoke: deps
	scripts/fuzz.sh run $${FUZZ_SECONDS:-15}

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Simulator Tests

format:
	$(SWIFT) format --in-place --recursive Package.swift Sources Simulator Tests

# What CI runs (.ci/run): the tests, the tests under ThreadSanitizer, the allocation thresholds
# and a short run of every fuzz target.
ci: test tsan bench-check fuzz-smoke

clean:
	rm -rf .build .build-* Benchmarks/.build Fuzz/.build
