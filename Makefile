# idnode: `make run` starts a demo node, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= var
SCALE ?= 1000000
LOADTEST_SECONDS ?= 60

.PHONY: run test test-fast check proto proto-check bench loadtest lint format system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,loadtest]'
	touch $(STAMP)

## run: a demo secondary node on ./var (HTTP on 127.0.0.1:8000), synced to a reference top-level node (Ctrl-C stops both)
run: $(STAMP)
	$(BIN)/python -m idnode.cli.demo --data-dir $(DATA_DIR) --http-listen 127.0.0.1:8000

## test: install everything, check style/types/layers/stubs, run the whole suite
test: $(STAMP) system-deps check
	$(BIN)/python -m pytest -q

## test-fast: the quick loop: checks and every test not marked slow
test-fast: $(STAMP) check
	$(BIN)/python -m pytest -m 'not slow' -q

## check: formatting, lint, types, layering, generated stubs up to date
check: $(STAMP) proto-check
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## proto: regenerate the gRPC/protobuf stubs next to their .proto files
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. proto/*.proto

proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp proto/*.proto && \
	for f in $$tmp/proto/*; do cmp -s $$f proto/$$(basename $$f) || { echo "stale generated stub: proto/$$(basename $$f) (run make proto)"; exit 1; }; done; \
	rm -rf $$tmp

## system-deps: Debian packages the integration tests drive (dig, knotd, nsd, named, unbound,
## kzonecheck, named-checkzone, dnsperf, promtool, wrk, chromium, haproxy: the load balancer
## in front of replicas, tests/haproxy)
SYSTEM_PACKAGES := knot knot-dnsutils knot-dnssecutils nsd bind9 bind9-utils bind9-dnsutils unbound \
	dnsperf prometheus wrk chromium haproxy
SYSTEM_TOOLS := kdig knotd kzonecheck nsd named named-checkzone unbound dnsperf promtool dig \
	wrk chromium haproxy
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do \
	  command -v $$t >/dev/null || [ -x /usr/sbin/$$t ] || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "not root: tests needing$$missing will be skipped"; fi; \
	fi

## bench: the performance table of docs/performance.md (SCALE=10000000 for the 10^7 step)
bench: $(STAMP) system-deps
	$(BIN)/python -m loadtest.bench --scale $(SCALE)

## loadtest: Locust's gRPC and DNS users against a fresh node for LOADTEST_SECONDS (60)
loadtest: $(STAMP)
	$(BIN)/python -m loadtest.locust_run --seconds $(LOADTEST_SECONDS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
