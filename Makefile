# egate's entry points. The quick start is `make demo` and `make test`.
CARGO ?= cargo
# Where cargo puts its builds: CARGO_TARGET_DIR when set, as cargo reads it.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
EGATE := $(TARGET_DIR)/release/egate
# The same binary as a kubectl plugin: `kubectl egate ...` runs it from PATH.
KUBECTL_PLUGIN := $(TARGET_DIR)/release/kubectl-egate
DEMO_POLICIES := examples/policies/debug-policies.yaml
DEMO_REQUESTS := $(sort $(wildcard examples/requests/*.json))

.PHONY: all guests build demo test e2e bench clean

all: build

## guests: compile every policy in policies/ to wasm32-wasip1 (target/builtin/*.wasm)
guests:
	scripts/build-guests.sh

## build: target/release/egate, with the built-in policy library inside, and kubectl-egate (the same binary)
build: guests
	$(CARGO) build --release --bin egate
	ln -f $(EGATE) $(KUBECTL_PLUGIN) 2>/dev/null || cp -f $(EGATE) $(KUBECTL_PLUGIN)
	@echo "built $(EGATE) and $(KUBECTL_PLUGIN) (put its directory on PATH for kubectl egate)"

## demo: build, then judge the sample kubectl debug requests with the sample policy set
demo: build
	@echo
	@echo "== egate eval --policy $(DEMO_POLICIES) (one decision per kubectl debug request)"
	@for request in $(DEMO_REQUESTS); do \
		$(EGATE) eval -o text --policy $(DEMO_POLICIES) --request $$request || exit 1; \
	done
	@echo
	@echo "== the built-in default set (policies/default.yaml, what egate serve uses), mutate then validate"
	@$(EGATE) eval -o text --policy policies/default.yaml --request examples/requests/debug-latest-image.json
	@echo
	@echo "== the AdmissionReview response the webhook would send for examples/requests/debug-privileged.json"
	@$(EGATE) eval --policy $(DEMO_POLICIES) --request examples/requests/debug-privileged.json

## test: the whole suite (unit, real guest modules, CLI), and e2e where Go or KUBEBUILDER_ASSETS is present
test: guests
	$(CARGO) test --workspace
	$(CARGO) run --quiet --bin egate -- test policies/ examples/kubernetes-policies/
	@if command -v go >/dev/null 2>&1 || [ -n "$$KUBEBUILDER_ASSETS" ]; then \
		$(MAKE) --no-print-directory e2e; \
	else \
		echo "e2e skipped: it needs Go (to build kube-apiserver, etcd and kubectl; https://go.dev/doc/install) or KUBEBUILDER_ASSETS pointing at setup-envtest's binaries"; \
	fi

## e2e: egate against a real kube-apiserver, etcd and kubectl debug (scripts/e2e.sh; docs/testing.md)
e2e: guests
	scripts/e2e.sh

## bench: criterion benches of the hot path
bench: guests
	$(CARGO) bench --bench evaluate

clean:
	$(CARGO) clean
