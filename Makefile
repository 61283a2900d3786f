# The two commands of the README: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Use the read-only data copies beside the repository when they exist (no download).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/mnist),)
export PARRY_MIRROR ?= file://$(SHARED_DATA)
endif

.PHONY: install demo test bench clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU build on these machines, so the project's `torch>=2.1`
# is already satisfied and nothing pulls a multi-gigabyte CUDA build.
# The reference libraries of the agreement tests are optional: where they cannot be
# installed, those tests skip and say so. So is Chromium (apt, only as root), for the report's browser test.
$(STAMP): pyproject.toml tests/requirements-reference.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	echo torch==2.13.0 > $(VENV)/torch-pin.txt
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -c $(VENV)/torch-pin.txt -r tests/requirements-reference.txt \
		&& $(BIN)/pip install --quiet --no-deps torchattacks==3.5.1 \
		|| echo "reference libraries not installed: the agreement tests will skip"
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then \
		{ apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } \
		>/dev/null 2>&1 || echo "chromium not installed: the report's browser test will skip"; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/parry demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	bash benchmarks/setup_peers.sh
	benchmarks/.venv-peers/bin/python benchmarks/pgd_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
