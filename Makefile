# Both main targets create the environments and install what they need:
#   .venv         the innvestigate engine: TensorFlow 2.14.1 (Keras 2), innvestigate 2.1.2, numpy < 2
#   .venv-keras3  the native Keras 3 engine: TensorFlow 2.21 (Keras 3), numpy 2
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENV_K3 := .venv-keras3
BIN_K3 := $(VENV_K3)/bin
STAMP_K3 := $(VENV_K3)/.installed
TF_KERAS3 ?= tensorflow==2.21.*

.PHONY: install demo demo-innvestigate test test-slow bench bench-memory bench-ray lint notebooks clean

define make_venv
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or: make PY=python3 ...)"; exit 1; }
	test -x $(1)/bin/python || $(PY) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
endef

$(STAMP): pyproject.toml
	$(call make_venv,$(VENV))
	$(BIN)/python -m pip install -q -e ".[innvestigate,ray,test]"
	touch $(STAMP)

$(STAMP_K3): pyproject.toml
	$(call make_venv,$(VENV_K3))
	$(BIN_K3)/python -m pip install -q -e ".[keras3,ray,test]" "$(TF_KERAS3)"
	touch $(STAMP_K3)

install: $(STAMP) $(STAMP_K3)

# The demo on the recommended engine (Keras 3); the same on the innvestigate engine (TF 2.14).
demo: $(STAMP_K3)
	$(BIN_K3)/sglrp demo --out results/demo

demo-innvestigate: $(STAMP)
	$(BIN)/sglrp demo --out results/demo-innvestigate

# The whole suite in both engines' environments, two workers (a test file stays on one).
PYTEST := -m pytest -q -n 2 --dist loadfile --durations=10
test: install
	$(BIN)/python $(PYTEST)
	$(BIN_K3)/python $(PYTEST)

test-slow: install
	$(BIN)/python $(PYTEST) -m slow
	$(BIN_K3)/python $(PYTEST) -m slow

# Both engines, one after the other; benchmarks/RESULTS.md puts them side by side.
bench: install
	$(BIN)/python -m benchmarks.run --json benchmarks/results-cpu.json
	$(BIN_K3)/python -m benchmarks.run --json benchmarks/results-cpu-keras3.json

bench-memory: $(STAMP)
	$(BIN)/python -m benchmarks.memory

# sglrp explain in one process against --ray with 1 and 2 workers (demo CNN, VGG16), ~8 min
bench-ray: $(STAMP)
	$(BIN)/python -m benchmarks.ray_bench --json benchmarks/ray-cpu.json

# The example notebooks: written from examples/build_notebooks.py, then the offline ones run in
# place so that they are committed with their outputs; zebra_elephant.ipynb only when the VGG16
# ImageNet weights are there (Keras cache, or VGG16_WEIGHTS=path). The kernel is this .venv's.
NOTEBOOKS := examples/quickstart.ipynb examples/your_model.ipynb examples/spray.ipynb
VGG16_CACHED := $(or $(KERAS_HOME),$(HOME)/.keras)/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5
EXECUTE := JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(BIN)/python -m jupyter nbconvert \
	--to notebook --execute --inplace --ExecutePreprocessor.record_timing=False \
	--ExecutePreprocessor.timeout=1800

notebooks: $(STAMP)
	$(BIN)/python examples/build_notebooks.py
	$(EXECUTE) $(NOTEBOOKS)
	@if [ -f "$(VGG16_CACHED)" ] || [ -n "$$VGG16_WEIGHTS" ]; then \
		echo "$(EXECUTE) examples/zebra_elephant.ipynb"; $(EXECUTE) examples/zebra_elephant.ipynb; \
	else \
		echo "skipped examples/zebra_elephant.ipynb: no VGG16 ImageNet weights at $(VGG16_CACHED)"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check sglrp tests examples benchmarks

clean:
	rm -rf $(VENV) $(VENV_K3) results .pytest_cache build *.egg-info
