# Thin wrapper over CMake. Every target first installs missing Debian packages.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench docs models wasm clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) > $(BUILD_DIR).configure.log 2>&1 || (cat $(BUILD_DIR).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)

bench: build
	@$(BUILD_DIR)/bin/bench_kernels

# Retrains the small models of models/ from scratch (about an hour on 2 cores; see tools/train).
models: build
	@tools/train/train_all.sh $(BUILD_DIR)/bin/apr $(BUILD_DIR)/train

# apr for the browser (emscripten): the C API + page of examples/wasm in $(WASM_DIR)/site.
WASM_DIR ?= build-wasm
wasm: deps
	@examples/wasm/build.sh $(WASM_DIR)

docs: deps
	@doxygen docs/Doxyfile

clean:
	@rm -rf $(BUILD_DIR) $(BUILD_DIR).configure.log
