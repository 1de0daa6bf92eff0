# function-bsls. `make render` and `make test` do all the set-up they need.
SHELL := /bin/sh
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools/bin

.PHONY: all venv tools node-deps node-tools image package render render-all generate golden test unit lint e2e vm vm-deps vm-image fuzz load bench cluster node test-node clean

all: test

# Set-up output goes to stderr: `make render` prints only YAML on stdout.
$(VENV)/.stamp: pyproject.toml
	@$(PYTHON) --version >/dev/null 2>&1 || { echo "$(PYTHON) is required" >&2; exit 1; }
	@echo "creating $(VENV) and installing the project" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(PY) -m pip install --quiet --upgrade pip >&2
	@$(PY) -m pip install --quiet -e '.[dev]' >&2
	@touch $@

venv: $(VENV)/.stamp

tools:
	hack/tools.sh

## node-deps: the Debian packages the real node and the image builds need (containerd, runc, buildah, ...).
node-deps:
	hack/node-deps.sh

## node-tools: kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl, CoreDNS, the registry, pause, stamped Crossplane core.
node-tools:
	hack/node-tools.sh

## image: the function's image from the Dockerfile (on local stand-ins for its base images), cached by digest.
image: venv node-deps
	$(PY) hack/images.py function

## package: the Function package (.xpkg) with the function's image embedded, cached by digest.
package: venv node-deps
	hack/tools.sh crossplane
	$(PY) hack/images.py package

## render: run the function and render the BSLS example through `crossplane render`.
render: venv
	@hack/tools.sh crossplane
	@hack/render.sh

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
	$(VENV)/bin/shellcheck -x -P function/scripts -s sh function/scripts/*.sh hack/*.sh bench/*.sh .ci/run tests/vm/guest/*.sh tests/vm/guest/steps/*.sh

unit: venv
	$(PY) -m pytest -q tests --ignore=tests/e2e --ignore=tests/node --ignore=tests/vm

## cluster: a control plane without a node (etcd, kube-apiserver, Crossplane, this function as a process) with the APIs.
cluster: venv tools
	$(PY) hack/cluster.py --apis

## node: a real single-node cluster with Crossplane and the function's package installed; Ctrl-C stops it.
node: venv tools node-deps node-tools
	$(PY) hack/node.py

## test-node: the tests on the real node alone.
test-node: venv tools node-deps node-tools
	$(PY) -m pytest -q tests/node

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

## test: lint, unit, render, end-to-end, VM and real-node tests.
test: venv tools node-deps node-tools vm-deps lint
	$(PY) -m pytest -q tests

## bench: backups through the server against direct, the server as the repository grows, the
## function beside its floors, end to end; writes docs/performance.md (BENCH_ARGS=--quick: a smoke run).
bench: venv tools node-deps node-tools
	hack/tools.sh kopia
	$(PY) -m bench.bench --write docs/performance.md --sizing docs/platform-guide.md $(BENCH_ARGS)

## fuzz: the deep property run (at least 10,000 examples per property).
fuzz: venv
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest -q tests/test_properties.py

## load: 10,000 calls from 64 concurrent callers against the real gRPC server.
load: venv
	$(PY) -m pytest -q -s tests/test_load.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache
