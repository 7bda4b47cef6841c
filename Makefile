# rampart - the two commands are `make run` and `make check`; everything else is a step of them.
# The C build is CMake + Ninja; this file only sequences steps.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
DATA       ?= $(CURDIR)/data
NPROC      := $(shell nproc 2>/dev/null || echo 2)
CMAKE_GEN  := -G Ninja
FUZZERS    := codec_fuzz path_fuzz query_fuzz sni_fuzz range_fuzz token_fuzz jwt_fuzz scope_fuzz \
              audit_fuzz isotime_fuzz envelope_fuzz kvreq_fuzz kvid_fuzz unzip_fuzz access_fuzz \
              settings_fuzz easyauth_fuzz oidc_fuzz helper_fuzz ncron_fuzz route_fuzz \
              fnconfig_fuzz cookie_fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps deps-c build asan-build fuzz-build run check unit unit-asan e2e e2e-asan \
        fuzz-replay fuzz bench bench-iam bench-vault bench-sites bench-proxy bench-functions bench-functions-cold lint lint-format lint-banned lint-cppcheck \
        testssl clean

all: build

deps:
	@scripts/deps.sh

deps-c:
	@scripts/deps.sh --no-npm

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps-c $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON

asan-build: deps-c $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DRP_FUZZ=ON -DRP_TESTS=OFF

fuzz-build: deps-c $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(FUZZERS)

# Initialise a data directory (once) and serve the example site at https://rampart.localhost:8443/
run: deps build
	@scripts/run.sh $(BUILD)/rampart "$(DATA)"

# Everything CI runs: unit tests (plain and ASan+UBSan), fuzz corpus replay, end-to-end tests
# against the real server (plain and ASan+UBSan), and the lint checks.
check: deps build asan-build fuzz-build
	$(MAKE) --no-print-directory lint unit unit-asan fuzz-replay e2e e2e-asan

unit:
	cd $(BUILD) && ctest --output-on-failure -j$(NPROC)

unit-asan:
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(NPROC)

fuzz-replay:
	@for f in $(FUZZERS); do \
	    name=$${f%_fuzz}; \
	    echo "fuzz-replay: $$f on tests/fuzz/corpus/$$name"; \
	    $(FUZZ_BUILD)/$$f -runs=0 tests/fuzz/corpus/$$name >/dev/null 2>$(FUZZ_BUILD)/$$f.log \
	        || { cat $(FUZZ_BUILD)/$$f.log; exit 1; }; \
	done

# Coverage-guided fuzzing for FUZZ_SECONDS per target on a scratch copy of each corpus.
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	    name=$${f%_fuzz}; tmp=$$(mktemp -d); cp -r tests/fuzz/corpus/$$name/. $$tmp/; \
	    echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$tmp \
	        -artifact_prefix=tests/fuzz/ || exit 1; rm -rf $$tmp; \
	done

e2e: deps build
	cd tests/e2e && RAMPART_BIN=$(CURDIR)/$(BUILD)/rampart node --test --test-concurrency=1 *.test.mjs

e2e-asan: deps asan-build
	cd tests/e2e && RAMPART_BIN=$(CURDIR)/$(ASAN_BUILD)/rampart RAMPART_SANITIZED=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 \
	    node --test --test-concurrency=1 *.test.mjs

testssl: deps build
	scripts/testssl.sh $(BUILD)/rampart

bench: deps build
	bench/static-vs-nginx $(BUILD)/rampart
	bench/iam-auth $(BUILD)/rampart
	bench/vault $(BUILD)/rampart
	bench/sites-deploy $(BUILD)/rampart
	bench/sites-proxy $(BUILD)/rampart
	bench/functions $(BUILD)/rampart
	bench/functions-cold $(BUILD)/rampart

bench-iam: deps build
	bench/iam-auth $(BUILD)/rampart

bench-vault: deps build
	bench/vault $(BUILD)/rampart

bench-sites: deps build
	bench/sites-deploy $(BUILD)/rampart

bench-proxy: deps build
	bench/sites-proxy $(BUILD)/rampart

bench-functions: deps build
	bench/functions $(BUILD)/rampart

bench-functions-cold: deps build
	bench/functions-cold $(BUILD)/rampart

lint: lint-format lint-banned lint-cppcheck

lint-format:
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

lint-banned:
	@scripts/banned.sh

lint-cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	    --std=c11 -I src -D_GNU_SOURCE --suppress=missingIncludeSystem src

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
