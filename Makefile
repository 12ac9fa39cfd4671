# kubectl-onboard. `make demo` onboards a user on a local control plane; `make test` runs
# everything CI runs. Both build the control plane from Go modules on first use (cached).

SHELL := /bin/bash
CARGO ?= cargo
export CONTROLPLANE_BIN := $(CURDIR)/target/controlplane/bin
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

.PHONY: build release dist manifest krew-tools krew-check release-check workflows shells controlplane cluster demo test lint clean fuzz deny audit

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The release archive krew installs, for this machine (linux/amd64): the stripped binary and
# LICENSE, packed reproducibly by .ci/pack.sh (as the release workflow packs every platform),
# with its sha256 beside it.
dist: release
	@bash .ci/pack.sh target/release/kubectl-onboard linux amd64 dist

# dist/onboard.yaml: plugin-manifest/onboard.yaml with the sha256 of the archive built here
# (tests/krew/manifest.sh --release fills all six platforms from dist/*.sha256).
manifest: dist
	@bash tests/krew/manifest.sh

# krew and validate-krew-manifest, built from their Go module on first use (target/krew/bin).
krew-tools:
	@bash tests/krew/tools.sh

# krew's own validator on the rendered manifest, then a real `kubectl krew install` of the
# archive into a temporary KREW_ROOT, used through kubectl's plugin discovery.
krew-check: manifest krew-tools
	@bash tests/krew/check.sh

# The release workflow's packing and manifest rendering for all five platforms, checked with
# krew's validator (tests/krew/release.sh); then actionlint on .github/workflows.
release-check: release krew-tools
	@bash tests/krew/release.sh

workflows:
	@bash tests/ci/actionlint.sh

# zsh and fish for the completion tests (apt-get when missing).
shells:
	@bash tests/ci/shells.sh

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

# Fails if the tests leave a control-plane process behind (ones running before are not ours).
test: controlplane shells lint deny krew-check release-check workflows
	@pattern='^$(CONTROLPLANE_BIN)/'; before=$$(pgrep -f "$$pattern" | sort); \
	$(CARGO) test; status=$$?; \
	for i in 1 2 3 4 5 6 7 8 9 10; do \
	  left=$$(comm -13 <(echo "$$before") <(pgrep -f "$$pattern" | sort)); [ -z "$$left" ] && break; sleep 0.5; \
	done; \
	if [ -n "$$left" ]; then echo "control plane processes left running after the tests:"; ps -o pid=,args= -p $$left; exit 1; fi; \
	exit $$status

# Fuzzing (fuzz/): each cargo-fuzz target for FUZZ_SECONDS; installs cargo-fuzz if missing.
FUZZ_SECONDS ?= 60
fuzz:
	@bash fuzz/run.sh $(FUZZ_SECONDS)

# Supply chain (deny.toml): licences, sources and bans from Cargo.lock (needs only crates.io).
deny:
	@command -v cargo-deny >/dev/null || { echo "cargo-deny is not installed: installing cargo-deny 0.20.2 (cargo install --locked, several minutes, once)"; $(CARGO) install cargo-deny --locked --version 0.20.2; }
	$(CARGO) deny --locked check bans licenses sources

# Advisories need the RustSec database from GitHub: run where GitHub is reachable.
audit: deny
	$(CARGO) deny --locked check advisories

# Benchmarks on a local control plane, written to benches/RESULTS.md (never part of `make test`).
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--runs 20 --only 1,2".
.PHONY: bench
bench: controlplane
	@bash benches/run.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
