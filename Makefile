# function-bsls. `make render` and `make test` do all the set-up they need.
SHELL := /bin/sh
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools/bin

.PHONY: all venv tools render render-all generate golden test unit lint e2e vm vm-deps vm-image fuzz load bench cluster test-cluster clean

all: test

$(VENV)/.stamp: pyproject.toml
	@$(PYTHON) --version >/dev/null 2>&1 || { echo "$(PYTHON) is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp

tools:
	hack/tools.sh

## render: run the function and render the BSLS example through `crossplane render`.
render: venv
	hack/tools.sh crossplane
	hack/render.sh

## render-all: render every example XR (servers and repositories).
render-all: venv
	hack/tools.sh crossplane
	@for xr in examples/bslr*.yaml; do echo "# $$xr"; hack/render.sh $$xr apis/bslr/composition.yaml; done
	@echo "# examples/bsls.yaml"; hack/render.sh

generate: venv
	$(PY) hack/gen_legacy.py

## golden: rewrite the reviewed answers in tests/golden after an intended change.
golden: venv
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_golden.py
	git --no-pager diff --stat tests/golden

lint: venv
	$(VENV)/bin/ruff check function tests bench hack
	$(VENV)/bin/ruff format --check function tests bench hack
	$(VENV)/bin/shellcheck -s sh function/scripts/*.sh hack/*.sh .ci/run tests/vm/guest/*.sh tests/vm/guest/steps/*.sh

unit: venv
	$(PY) -m pytest -q tests --ignore=tests/e2e --ignore=tests/cluster --ignore=tests/vm

## cluster: a local control plane (etcd, kube-apiserver, Crossplane, this function) with the APIs.
cluster: venv tools
	$(PY) hack/cluster.py --apis

## test-cluster: the tests on the local control plane alone.
test-cluster: venv tools
	$(PY) -m pytest -q -m cluster tests/cluster

e2e: venv tools
	$(PY) -m pytest -q tests/e2e

## vm-deps: the Debian packages of the VM suite (qemu, xorriso, socat, debootstrap), if missing.
vm-deps:
	hack/vm-deps.sh

## vm-image: build the guest image (Debian 12, systemd, the pinned kopia) into the cache.
vm-image: venv vm-deps
	hack/tools.sh kopia
	$(PY) hack/guest.py

## vm: the VM suite alone: real guests under qemu (software emulation) as the VM owners.
vm: venv vm-deps
	hack/tools.sh kopia
	$(PY) -m pytest -q tests/vm

## test: lint, unit, render, end-to-end, VM and control-plane tests.
test: venv tools vm-deps lint
	$(PY) -m pytest -q tests

## bench: this function beside a no-op function on the same SDK; writes docs/performance.md.
bench: venv
	$(PY) -m bench.bench --write docs/performance.md

## fuzz: the deep property run (at least 10,000 examples per property).
fuzz: venv
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest -q tests/test_properties.py

## load: 10,000 calls from 64 concurrent callers against the real gRPC server.
load: venv
	$(PY) -m pytest -q -s tests/test_load.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache
