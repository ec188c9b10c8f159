# The commands of the README: `make demo` (Co-mining on the bundled digits), `make test` (the whole
# suite, as CI runs it) and `make test-fast` (the edit loop: all but the tests marked slow).
# Both create the project-local virtual environment .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

# constraints.txt pins torch and kornia (see there). TORCH_INDEX, where given, is the index torch is
# taken from first: https://download.pytorch.org/whl/cpu keeps pip from pulling CUDA wheels.
TORCH_INDEX ?=

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(VENV)/bin/pip install --disable-pip-version-check -q -c constraints.txt --index-url $(TORCH_INDEX) torch)
	$(VENV)/bin/pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/comining train

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile -m "not slow"

# Speed and memory (docs/PERFORMANCE.md); give the machine to them alone.
bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_epoch.py
	$(VENV)/bin/python benchmarks/bench_mining.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
