# kubectl-onboard. `make demo` onboards a user on a local control plane; `make test` runs
# everything CI runs. Both build the control plane from Go modules on first use (cached).

SHELL := /bin/bash
CARGO ?= cargo
export CONTROLPLANE_BIN := $(CURDIR)/target/controlplane/bin

.PHONY: build release controlplane cluster demo test lint clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# etcd, kube-apiserver and kube-controller-manager, built once from tests/controlplane/go.mod.
controlplane:
	@bash tests/controlplane/build.sh

# A local control plane in the foreground; Ctrl-C tears it down.
cluster: controlplane
	$(CARGO) run --quiet --example cluster

demo: controlplane release
	@$(CARGO) run --quiet --release --example cluster -- bash tests/demo.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: controlplane lint
	$(CARGO) test
	@if pgrep -f '$(CONTROLPLANE_BIN)/' >/dev/null; then \
	  echo "control plane processes left running after the tests:"; pgrep -af '$(CONTROLPLANE_BIN)/'; exit 1; \
	fi

clean:
	$(CARGO) clean
