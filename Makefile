# Thin wrapper over CMake. The two set-up commands are `make demo` and
# `make test`; both install missing Debian packages first.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
# Tests at once: twice the cores. Most integration and scenario tests spend
# their time waiting on timers and simulated callers (a second of CPU in a
# 40 s test), so the cores would otherwise sit idle.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
BUILD   ?= build
SANBUILD ?= build-sanitize
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build test unit sanitize valgrind demo bench fuzz soak soak-valgrind format \
        format-check clean package install

all: build

deps:
	@scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j$(JOBS)

# Every test, normal build first, then again under ASan+UBSan.
test: build
	rm -rf $(BUILD)/test-tmp
	cd $(BUILD) && ctest $(CTEST_ARGS) -j$(TEST_JOBS)
	$(MAKE) --no-print-directory sanitize

unit: build
	rm -rf $(BUILD)/test-tmp
	cd $(BUILD) && ctest $(CTEST_ARGS) -L unit

sanitize: deps
	cmake -S . -B $(SANBUILD) -DCMAKE_BUILD_TYPE=Debug -DCG_SANITIZE=ON \
	    -DCMAKE_C_COMPILER=clang >/dev/null
	cmake --build $(SANBUILD) -j$(JOBS)
	rm -rf $(SANBUILD)/test-tmp
	cd $(SANBUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j$(TEST_JOBS)

valgrind: build
	rm -rf $(BUILD)/test-tmp
	cd $(BUILD) && CG_VALGRIND=1 ctest $(CTEST_ARGS) -L integration

demo: build
	./$(BUILD)/callgate demo

# The benchmarks (bench/run.sh and bench/viewers.sh, about a quarter of an hour; bench/RESULTS.md). A build
# directory configured before bench/ existed learns of its helpers here.
bench: build
	@scripts/deps.sh --bench
	@cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target cgbench-rate cgbench-sign cgbench-util cgbench-report cgbench-rtt cgbench-routes
	@if [ -x bench/run.sh ]; then bench/run.sh $(BUILD); else echo "bench: no benchmarks yet"; fi
	bench/viewers.sh $(BUILD)

# Long steady simulated traffic (SOAK_MINUTES, default 30) against two
# instances and one Redis: RSS, descriptors and Redis memory must stay flat,
# with no error. Not part of `make test`. soak-valgrind: a short run with
# both instances under valgrind, failing on any leak.
soak: build
	@scripts/soak.sh $(BUILD)

soak-valgrind: build
	@scripts/soak.sh --valgrind $(BUILD)

# Coverage-guided fuzzing with libFuzzer (clang), FUZZ_SECONDS per target
# (default 60); FUZZ_TARGET=form for one. make test replays the corpora.
fuzz: deps
	@scripts/fuzz.sh

# The Debian package (build/callgate_<version>_<arch>.deb): the daemon, the
# simulator, the systemd unit and the example configuration; docs/DEPLOY.md.
package: build
	cd $(BUILD) && cpack -G DEB

# Installs under PREFIX (default /usr/local) for those who do not use packages.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SANBUILD)
