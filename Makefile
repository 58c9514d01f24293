# pullpolicy — one entry point for building, running and testing.
#
#   make build        the controller and the C library
#   make run          a local control plane, the CRD, samples, the controller
#   make stop         stops what `make run` started
#   make test         unit + integration + e2e on a real control plane
#   make unit         unit tests only (no control plane)
#   make lint         clang-format check and cppcheck
#   make bench        convergence benchmark (CSV in build/bench/)
#   make bench-secrets  memory beside K unrelated secrets (build/bench/secrets.csv)
#   make bench-pods   memory beside K running pods (build/bench/pods.csv; R13 watches Pending only)
#   make bench-scale    memory and start-up for N namespaces x 4 SAs and K secrets (build/bench/scale.csv)
#   make fuzz         libFuzzer harnesses for every parser
#   make bundle       regenerate the OLM bundle (bundle/, bundle.Dockerfile) from manifests/
#   make bundle-validate  OperatorHub's validators on bundle/ (also in make test)
#   make helm-test    the Helm chart: lint, template vs manifests/, install/upgrade/uninstall
#   make faults       the fault-injection suite, full length (README "Faults"); make test runs it short
#   SANITIZE=1        ASan+UBSan build in build-asan/
#   VALGRIND=1        run tests under valgrind memcheck

SHELL := /bin/bash
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

# V=1 shows whole compiler command lines.
V ?= 0
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n'
endif

SANITIZE ?= 0
VALGRIND ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SAN_FLAGS :=
endif

PKGS := libcurl json-c libev yaml-0.1
PKG_CFLAGS = $(shell pkg-config --cflags $(filter-out libev,$(PKGS)) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(filter-out libev,$(PKGS)) 2>/dev/null) -lev -lm

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
          -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing \
          -D_GNU_SOURCE -Ipkg -Icontroller -Itest/support $(PKG_CFLAGS) $(SAN_FLAGS) -MMD -MP
LDFLAGS += $(SAN_FLAGS)
LDLIBS += $(PKG_LIBS) -lmicrohttpd

PKG_SRCS := $(shell find pkg -name '*.c' | sort)
CTRL_SRCS := $(filter-out controller/main.c,$(shell find controller -name '*.c' 2>/dev/null | sort))
SUPPORT_SRCS := $(shell find test/support -name '*.c' 2>/dev/null | sort)
UNIT_SRCS := $(shell find test/unit -name 'test_*.c' 2>/dev/null | sort)
INTEG_SRCS := $(shell find test/integration -name 'test_*.c' 2>/dev/null | sort)
E2E_SRCS := $(shell find test/e2e -name 'test_*.c' 2>/dev/null | sort)
# Runs after every other suite: it searches their logs and objects for secret payloads.
LEAK_SRCS := $(shell find test/leakcheck -name 'test_*.c' 2>/dev/null | sort)
TOOL_SRCS := $(shell find test/sim -name '*.c' 2>/dev/null | sort)
LUA_TESTS := $(shell find test/argocd -name 'test_*.lua' 2>/dev/null | sort)
SCRIPT_TESTS := $(shell find test/image test/lint -name 'test_*.sh' 2>/dev/null | sort)
# The README's `make run`, on a control plane of its own; before the leak check, which reads its log.
RUN_TESTS := $(shell find test/run -name 'test_*.sh' 2>/dev/null | sort)
# The Helm chart installed, upgraded and uninstalled on a control plane of its own.
HELM_TESTS := $(shell find test/helm -name 'test_*.sh' 2>/dev/null | sort)

PKG_OBJS := $(PKG_SRCS:%.c=$(BUILD)/%.o)
CTRL_OBJS := $(CTRL_SRCS:%.c=$(BUILD)/%.o)
SUPPORT_OBJS := $(SUPPORT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
INTEG_BINS := $(INTEG_SRCS:%.c=$(BUILD)/%)
E2E_BINS := $(E2E_SRCS:%.c=$(BUILD)/%)
LEAK_BINS := $(LEAK_SRCS:%.c=$(BUILD)/%)
# e2e suites that involve OpenShift's dockercfg secrets run once more per other simulation mode
# (plain runs use the default, current): hack/run-tests.sh runs BIN@MODE with PULLPOLICY_SIM_MODE.
SIM_MODE_SUITES := test_seed
E2E_MODE_RUNS := $(foreach s,$(SIM_MODE_SUITES),$(foreach m,early416 legacy removed,$(BUILD)/test/e2e/$(s)@$(m)))
LIB := $(BUILD)/libpullpolicy.a
CTRL_LIB := $(BUILD)/libcontroller.a
CONTROLLER := $(BUILD)/pullpolicy-controller
SIM := $(BUILD)/pullpolicy-sim

# NO_DEPS=1: the packages are known to be there (the Containerfile's build stage).
ifeq ($(NO_DEPS),1)
DEPS_STAMP :=
else
DEPS_STAMP := $(BUILD)/.deps-installed
endif
TESTENV_DIR ?= $(CURDIR)/.testenv
RUN_DIR ?= $(CURDIR)/.run

.PHONY: all build deps unit integration e2e test run stop lint format bench fuzz clean valgrind controlplane

all: build

deps: $(DEPS_STAMP)
ifneq ($(DEPS_STAMP),)
$(DEPS_STAMP): hack/install-deps.sh
	@bash hack/install-deps.sh
	@mkdir -p $(@D) && touch $@
endif

build: $(DEPS_STAMP) $(CONTROLLER) $(if $(TOOL_SRCS),$(SIM))

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(PKG_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(CTRL_LIB): $(CTRL_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(CONTROLLER): $(BUILD)/controller/main.o $(CTRL_LIB) $(LIB)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SIM): $(TOOL_SRCS:%.c=$(BUILD)/%.o) $(LIB)
	$(say) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

define test_link_rule
$(BUILD)/test/$(1)/%: $(BUILD)/test/$(1)/%.o $(SUPPORT_OBJS) $(CTRL_LIB) $(LIB)
	$$(say) LD $$@
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcmocka
endef
$(foreach d,unit integration e2e leakcheck,$(eval $(call test_link_rule,$(d))))

unit: $(DEPS_STAMP) $(UNIT_BINS) $(CONTROLLER)
	@BUILD=$(BUILD) VALGRIND=$(VALGRIND) bash hack/run-tests.sh unit $(UNIT_BINS) $(LUA_TESTS) $(SCRIPT_TESTS)

controlplane: $(DEPS_STAMP)
	@bash hack/build-control-plane.sh

integration: build controlplane $(INTEG_BINS) $(E2E_BINS) $(LEAK_BINS)
	@BUILD=$(BUILD) VALGRIND=$(VALGRIND) TESTENV_DIR=$(TESTENV_DIR) \
	  bash hack/run-tests.sh integration $(INTEG_BINS) $(E2E_BINS) $(E2E_MODE_RUNS) $(RUN_TESTS) $(HELM_TESTS) $(LEAK_BINS)

# The whole suite: unit tests, then everything that needs the control plane.
test: $(DEPS_STAMP) build $(UNIT_BINS) $(INTEG_BINS) $(E2E_BINS) $(LEAK_BINS) controlplane
	@BUILD=$(BUILD) VALGRIND=$(VALGRIND) TESTENV_DIR=$(TESTENV_DIR) \
	  bash hack/run-tests.sh all $(UNIT_BINS) $(LUA_TESTS) $(SCRIPT_TESTS) -- $(INTEG_BINS) $(E2E_BINS) $(E2E_MODE_RUNS) $(RUN_TESTS) $(HELM_TESTS) $(LEAK_BINS)

run: build controlplane
	@BUILD=$(BUILD) RUN_DIR=$(RUN_DIR) bash hack/run.sh

stop:
	@RUN_DIR=$(RUN_DIR) bash hack/stop.sh

lint: $(DEPS_STAMP)
	@bash hack/lint.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

bench: build controlplane
	@BUILD=$(BUILD) bash hack/bench.sh

# Memory beside K unrelated secrets (BENCH_K, BENCH_BINS: see the script).
.PHONY: bench-secrets
bench-secrets: build controlplane
	@BUILD=$(BUILD) bash hack/bench-secrets.sh

# Memory beside K running pods (issue 11: the Pending-only pod watch; BENCH_K, BENCH_BINS).
.PHONY: bench-pods
bench-pods: build controlplane
	@BUILD=$(BUILD) bash hack/bench-pods.sh

.PHONY: bench-scale
bench-scale: build controlplane
	@BUILD=$(BUILD) bash hack/bench-scale.sh

fuzz: $(DEPS_STAMP)
	@bash hack/fuzz.sh

# OLM bundle and Helm chart (README "Install on OpenShift (OperatorHub/OLM)", "Install with Helm").
.PHONY: bundle bundle-validate helm helm-test
bundle:
	@bash hack/gen-bundle.sh

bundle-validate:
	@"$$(bash hack/build-tool.sh olm-bundle --print-bin)" validate -k8s-version 1.37 bundle

helm:
	@bash hack/build-tool.sh helm

# The install test starts a control plane of its own, so no shared one is needed here.
helm-test: build controlplane
	@BUILD=$(BUILD) bash hack/run-tests.sh unit test/lint/test_helm_chart.sh $(HELM_TESTS)

.PHONY: faults
faults: build controlplane
	@BUILD=$(BUILD) bash test/faults/run.sh full

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
