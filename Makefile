# Pacer build: one Makefile, all outputs under $(BUILD) (default build/).
#   make            build pacer-master, pacer-agent, pacer-executor, pacerctl and the BPF objects
#   make deps       install missing Debian packages (apt-get, only when something is missing)
#   make check      deps + build + sanitizer build + every test
#   make run        deps + build + a local demo cluster (master + 3 agents in network namespaces)
#   make bench      deps + build + benchmarks (results: docs/benchmarks.md)
# Any new .c file in a program's folder is picked up by the wildcards below.

SHELL    := /bin/bash
BUILD    ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
SAN      ?=

OPT      ?= -O2 -g
override CFLAGS += $(OPT) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -I$(BUILD)
ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
LDFLAGS  += -Wl,--as-needed
LDLIBS   := -lmicrohttpd -ljansson -lcurl -lsqlite3 -lbpf -lelf -lz -luring -lseccomp -lcap -lcrypto -lpthread -lm

DEB_PACKAGES := build-essential clang llvm bpftool pkg-config libbpf-dev libelf-dev zlib1g-dev \
	liburing-dev libcmocka-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev \
	libsqlite3-dev libseccomp-dev libcap-dev libssl-dev iproute2 procps curl jq \
	python3 python3-pytest libclang-rt-14-dev util-linux \
	iperf3 iptables

LIB_SRCS      := $(sort $(wildcard lib/*.c))
MASTER_SRCS   := $(sort $(filter-out master/main.c,$(wildcard master/*.c master/*/*.c)))
AGENT_SRCS    := $(sort $(filter-out agent/main.c,$(wildcard agent/*.c)))
EXECUTOR_SRCS := $(sort $(wildcard agent/executor/*.c))
PACERCTL_SRCS := $(sort $(wildcard tools/pacerctl/*.c))
PACERBPF_SRCS := $(sort $(wildcard tools/pacer-bpf/*.c))
BPF_SRCS      := $(sort $(wildcard bpf/*.bpf.c))
UNIT_SRCS     := $(sort $(wildcard tests/unit/test_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJS      := $(call obj,$(LIB_SRCS))
MASTER_OBJS   := $(call obj,$(MASTER_SRCS))
AGENT_OBJS    := $(call obj,$(AGENT_SRCS))
EXECUTOR_OBJS := $(call obj,$(EXECUTOR_SRCS))
PACERCTL_OBJS := $(call obj,$(PACERCTL_SRCS))
PACERBPF_OBJS := $(call obj,$(PACERBPF_SRCS))
BPF_OBJS      := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))
UNIT_BINS     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

BINS := $(BUILD)/pacer-master $(BUILD)/pacer-agent $(BUILD)/pacer-executor $(BUILD)/pacerctl
ifneq ($(PACERBPF_SRCS),)
BINS += $(BUILD)/pacer-bpf
endif

.PHONY: all deps check unit cluster-test run bench clean fuzz
# keep generated skeletons and objects between runs (they are not throwaway intermediates)
.SECONDARY:
all: $(BINS) $(UNIT_BINS)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h $(wildcard bpf/*.h)
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -I. -Wall -Werror -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: %.c $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpacer.a: $(LIB_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libmaster.a: $(MASTER_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/pacer-master: $(BUILD)/obj/master/main.o $(BUILD)/libmaster.a $(BUILD)/libpacer.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/pacer-agent: $(BUILD)/obj/agent/main.o $(BUILD)/libagent.a $(BUILD)/libpacer.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/pacer-executor: $(EXECUTOR_OBJS) $(BUILD)/libpacer.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/pacerctl: $(PACERCTL_OBJS) $(BUILD)/libpacer.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/pacer-bpf: $(PACERBPF_OBJS) $(BUILD)/libpacer.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libmaster.a $(BUILD)/libagent.a $(BUILD)/libpacer.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

cluster-test: $(BINS)
	PACER_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -v tests/cluster

# check: the normal build's unit tests, then everything again under ASan/UBSan, then the
# cluster tests against the sanitized daemons.
check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" all
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" unit
	$(MAKE) fuzz FUZZ_SECONDS=10
	PACER_BUILD=$(abspath build-asan) /usr/bin/python3 -m pytest -v tests/cluster

run: deps all
	tools/demo-cluster.sh $(abspath $(BUILD))

bench: deps all $(BUILD)/bench/acct_overhead
	bench/run.sh $(abspath $(BUILD))

# bench-acct: only the accounting overhead benchmark (bench/acct_overhead.sh: none / Pacer's
# BPF accounting / iptables cgroup rules at ACCT_TASKS tasks, ACCT_ROUNDS interleaved rounds).
ACCT_TASKS  ?= 1 100 1000
ACCT_ROUNDS ?= 5
.PHONY: bench-acct
$(BUILD)/bench/acct_overhead: bench/acct_overhead.c $(BUILD)/libagent.a $(BUILD)/libpacer.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)
bench-acct: deps $(BUILD)/bench/acct_overhead
	ACCT_TASKS="$(ACCT_TASKS)" ACCT_ROUNDS=$(ACCT_ROUNDS) bench/acct_overhead.sh $(abspath $(BUILD))

# fuzz: every parser that reads the network or a file has a libFuzzer target in tests/fuzz/;
# each runs for FUZZ_SECONDS (check runs them briefly; run longer by hand). A target names
# the sources it needs beyond lib/ in a comment line: / * fuzz-links: a.c b.c * /
# FUZZ_ONLY=fuzz_a fuzz_b builds and runs just those targets.
FUZZ_SECONDS ?= 15
FUZZ_SRCS := $(if $(FUZZ_ONLY),$(patsubst %,tests/fuzz/%.c,$(FUZZ_ONLY)),\
	$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -Ibuild-fuzz -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
fuzz:
	@mkdir -p build-fuzz
	@set -e -o pipefail; shopt -s nullglob; for f in $(FUZZ_SRCS); do \
	  n=$$(basename $$f .c); \
	  extra=$$(sed -n 's|^/\* fuzz-links: \(.*\) \*/$$|\1|p' $$f); \
	  $(CLANG) $(FUZZ_CFLAGS) -o build-fuzz/$$n $$f $(LIB_SRCS) $$extra $(LDLIBS); \
	  mkdir -p build-fuzz/corpus-$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=build-fuzz/$$n- build-fuzz/corpus-$$n tests/fuzz/seeds/$$n 2>&1 | tail -n 3; \
	done

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# bench-placement: the placement load generator (bench/placement.c) against pacer-master, a
# baseline master built from BASELINE_COMMIT (the master core before the scale work), and the
# master core with a reference scheduler (bench/placement_master.c). Sizes: PLACEMENT_CASES.
BASELINE_COMMIT ?= dbb999b
PLACEMENT_CASES ?= 100:10000 1000:100000
PLACEMENT_BASELINE_CASES ?= 100:10000
PLACEMENT_REF_CASES ?= 100:10000 1000:100000 10000:1000000
.PHONY: bench-placement
$(BUILD)/bench/placement: bench/placement.c bench/placement_usage.c bench/placement_stream.c \
			  $(BUILD)/libpacer.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)
$(BUILD)/bench/placement_master: bench/placement_master.c $(BUILD)/libmaster.a $(BUILD)/libpacer.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)
bench-placement: $(BUILD)/pacer-master $(BUILD)/bench/placement $(BUILD)/bench/placement_master
	bench/placement.sh $(abspath $(BUILD)) $(BASELINE_COMMIT) "$(PLACEMENT_CASES)" \
		"$(PLACEMENT_BASELINE_CASES)" "$(PLACEMENT_REF_CASES)"
