# Convenience targets over the CMake build in build/ (scripts/bootstrap makes
# it, installing what is missing).  CMake stays the build system; this only
# spells the usual commands.
BUILD ?= build

.PHONY: all test soak clean

all:
	./scripts/bootstrap

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j2

# Randomized crash trials (docs/recovery.md): TLM_SOAK_TRIALS (default 500)
# and TLM_SOAK_SEED in the environment.
soak: all
	cmake --build $(BUILD) --target soak

clean:
	rm -rf $(BUILD) build-asan build-release
