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

.PHONY: install demo test test-slow bench bench-memory lint clean

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

demo: $(STAMP)
	$(BIN)/sglrp demo --out results/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-memory: $(STAMP)
	$(BIN)/python -m benchmarks.memory

lint: $(STAMP)
	$(BIN)/ruff check sglrp tests examples benchmarks

clean:
	rm -rf $(VENV) $(VENV_K3) results .pytest_cache build *.egg-info
