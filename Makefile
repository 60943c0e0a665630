# Convenience targets over the CMake build in build/ (scripts/bootstrap makes
# it, installing what is missing).  CMake stays the build system; this only
# spells the usual commands.
BUILD ?= build

.PHONY: all test soak alloc clean

all:
	./scripts/bootstrap

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j2

# Randomized crash trials (docs/recovery.md): TLM_SOAK_TRIALS (default 500)
# and TLM_SOAK_SEED in the environment.
soak: all
	cmake --build $(BUILD) --target soak

# Allocation-failure walks over every allocation of two runs
# (docs/internals/engine.md, "Allocation failures"); about 12 minutes.
alloc: all
	cmake --build $(BUILD) --target alloc

clean:
	rm -rf $(BUILD) build-asan build-release
