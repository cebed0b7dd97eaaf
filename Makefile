# One virtual environment for the core and every connector, installed editable.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONNECTORS := connectors/file connectors/jdbc connectors/http connectors/rabbitmq connectors/kafka

.PHONY: setup quickstart test lint typecheck bench bench-pg bench-mysql clean docs

$(BIN)/pipeline-run: pyproject.toml $(foreach c,$(CONNECTORS),$(c)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,mysql]' \
	  $(foreach c,$(CONNECTORS),-e $(c)$(if $(filter connectors/jdbc,$(c)),'[mysql]'))
	touch $@

# Byte-compile the editable sources too: where PYTHONDONTWRITEBYTECODE is set (CI images
# often do), every process would otherwise compile ~100 modules again (~0.3 s each start).
setup: $(BIN)/pipeline-run
	$(BIN)/python -m compileall -q pipeline_core $(foreach c,$(CONNECTORS),$(c)/src)

quickstart: setup
	$(BIN)/pipeline-run run examples/quickstart.yaml

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Servers the tests need are found or started first (scripts/test-services.sh); those it
# started are stopped again at the end, whatever the outcome. The tests must leave the
# checkout as they found it (scripts/checkout-state.sh): a difference fails the target
# and is printed (so would an edit made meanwhile by hand).
test: lint typecheck
	state=$$(mktemp -d); scripts/checkout-state.sh > "$$state/before"; \
	trap 'scripts/test-services.sh stop; rm -rf "'"$$state"'"' EXIT; \
	eval "$$(scripts/test-services.sh)" && $(BIN)/pytest; code=$$?; \
	scripts/checkout-state.sh > "$$state/after"; \
	if ! diff -u "$$state/before" "$$state/after"; then \
	  echo "make test: the tests changed the checkout (diff above)" >&2; code=1; fi; \
	exit $$code

bench: setup
	$(BIN)/python bench/file_to_file.py
	$(BIN)/python bench/checkpoint_overhead.py

# Needs PostgreSQL (PIPELINE_BENCH_PG_URL, default the local server).
bench-pg: setup
	$(BIN)/python bench/sql_task.py
	$(BIN)/python bench/http_to_sql.py

# Needs MariaDB/MySQL (PIPELINE_BENCH_MYSQL_URL, default root@127.0.0.1:3306).
bench-mysql: setup
	$(BIN)/python bench/mysql_task.py

clean:
	rm -rf $(VENV) .pipeline build dist

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site
