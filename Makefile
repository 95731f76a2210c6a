# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install on first use (CPU torch pin first, then the project).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench gpu-bundle gpu-check-dry

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# map layers once into ~/.cache/nowcast/maps (from the shared offline folder when it is
# beside the checkout, else downloaded; without either the demo draws no coastlines)
MAPS := $(wildcard ../shared/data/maps)
demo: install
	-$(VENV)/bin/nowcast mapdata $(if $(MAPS),--from $(MAPS))
	$(VENV)/bin/nowcast demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/python -m pytest -q

# the quick loop while editing: lint, then the tests not marked slow (CI runs them all)
test-fast: lint
	$(VENV)/bin/python -m pytest -q -m "not slow"

# The GPU check (benchmarks/gpu_check.sh) on a lent GPU machine: wheels for what its image
# lacks (benchmarks/gpu_requirements.txt; no network there) and the MeteoSwiss and OPERA
# files, into .gpu/ (ignored; 45 MB), which the device tool carries (carry [".gpu"]).
GPU_PLATFORMS := $(foreach n,2_28 2_27 2_24 2_17,--platform manylinux_$(n)_x86_64) \
	--platform manylinux2014_x86_64 --platform manylinux1_x86_64
gpu-bundle: install
	mkdir -p .gpu/wheels .gpu/data
	grep -v '# sdist' benchmarks/gpu_requirements.txt > .gpu/binary.txt
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(GPU_PLATFORMS) -d .gpu/wheels -r .gpu/binary.txt
	for p in $$(grep -E '^[^#].*# sdist' benchmarks/gpu_requirements.txt | cut -d' ' -f1); do \
		$(PY) -m pip download -q --no-deps -d .gpu/wheels $$p || exit 1; done
	cp ../shared/data/radar/mch-2016-07-11.nc ../shared/data/radar/opera-2018-08-24.nc .gpu/data/
	du -sh .gpu

# the same check at toy sizes on this CPU (CI runs it: tests/test_gpu_check.py)
gpu-check-dry: install
	bash benchmarks/gpu_check.sh --dry-run --out gpu-check-dry
