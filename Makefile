# Convenience targets over the CMake build in build/ (scripts/bootstrap makes
# it, installing what is missing).  CMake stays the build system; this only
# spells the usual commands.
BUILD ?= build

.PHONY: all test soak alloc fuzz gen-docs deb clean

all:
	./scripts/bootstrap

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j2

# Randomized crash trials (docs/recovery.md): TLM_SOAK_TRIALS (default 500)
# and TLM_SOAK_SEED in the environment; TLM_CRASH_JOURNAL=postgres journals
# every trial in a real PostgreSQL (docs/distributed.md).
soak: all
	cmake --build $(BUILD) --target soak

# Allocation-failure walks over every allocation of two runs
# (docs/internals/engine.md, "Allocation failures"); about 12 minutes.
alloc: all
	cmake --build $(BUILD) --target alloc

# Rewrite man/ and completions/ from the --help texts after changing one
# (docs/packaging.md); the cli.man and cli.completion tests fail until then.
gen-docs: all
	cmake --build $(BUILD) --target gen-docs

# The Debian package of a release build: build-release/telemachy_*.deb.
deb:
	./scripts/bootstrap --release
	cd build-release && cpack -G DEB

# libFuzzer targets (tests/fuzz/README.md), built with clang in build-fuzz/
# and run FUZZ_SECONDS each; what they find is in build-fuzz/fuzz/.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= spec client event server

fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DTLM_FUZZ=ON -DTLM_TESTS=OFF \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(FUZZ_BUILD) -j2 --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) build-asan build-release $(FUZZ_BUILD)
