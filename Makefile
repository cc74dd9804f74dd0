# The two commands of the README:  `make run` (the main job)  and  `make test` (the test suite).
# Both create .venv and install the project on first use. torch is pinned to 2.13.0 only when it is missing:
# on a CPU-only machine whose pip finds the local CPU wheel this never downloads CUDA packages; elsewhere pip picks
# the ordinary build (CUDA on GPU machines).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: setup run verify test test-fast bench bench-gpu bench-kernels sweep figures tables docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m meanfield.cli run --out $(OUT)

verify: setup
	$(PY) -m meanfield.cli verify --out $(OUT)/verify

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# AnyInit (the initialisation comparison's peer) is installed here only, never as a runtime dependency.
bench: setup
	$(PY) -m pip install -q anyinit==0.4.0
	$(PY) benchmarks/run_all.py --out benchmarks/RESULTS.md

# The correctness sweep: 10^5 (σ_w, σ_b, q_init) points per named activation, every returned q*, χ_1, c* and critical
# point checked against its defining equation by quadrature written in the script (about two minutes); exits 1 on any miss.
sweep: setup
	$(PY) benchmarks/sweep_correctness.py --out benchmarks/SWEEP.md

# mf.kernels beside neural-tangents 0.6.5, which is installed only here, in its own environment (.venv-bench): it
# needs an old jax (pins below; unpinned, pip takes a jax that neural-tangents fails to import with). Never a runtime
# dependency. BENCH_ARGS=--quick for a short check, --full for n = 20,000.
bench-kernels: setup
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -e . neural-tangents==0.6.5 jax==0.4.23 jaxlib==0.4.23 "numpy<2" tf2jax==0.3.5
	.venv-bench/bin/python benchmarks/bench_kernels.py --out benchmarks/RESULTS.md $(BENCH_ARGS)

# GPU cases (about a minute on one GPU); refuses with exit status 2 where no CUDA device is present.
bench-gpu: setup
	$(PY) benchmarks/bench_gpu.py --out benchmarks/RESULTS.md

figures: setup
	$(PY) -m meanfield.cli run --out docs/figures

# The named activations' moment tables shipped in meanfield/tables (rerun after editing the kernel template, the table
# builder or the quadrature: tests/test_activations.py checks that every shipped table matches the current code).
tables: setup
	$(PY) -c "from meanfield._table import write_shipped_tables as w; print(*w(), sep='\n')"

# The documentation: HTML in docs/_build/html (entry page index.html; warnings are errors), then every example of the
# guide and the API reference run by Sphinx's doctest builder. Needs the docs extra; builds offline.
docs: setup
	$(PY) -c "import sphinx, numpydoc, myst_parser" 2>/dev/null || $(PY) -m pip install -q -e ".[docs]"
	$(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	$(PY) -m sphinx -b doctest -W --keep-going -q docs docs/_build/doctest

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
