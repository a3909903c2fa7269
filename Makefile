# SPDX-License-Identifier: MIT

PREFIX ?= /usr
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
PKG_CONFIG ?= pkg-config

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes
CFLAGS += -fno-strict-aliasing -D_GNU_SOURCE
CPPFLAGS += -MMD -MP
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
# The daemons exit without freeing what lives as long as they do, and the
# engine cannot be traced for leaks once it drops privileges; a SIGSEGV
# the tests send on purpose must kill, not be reported.
E2E_ENV := ASAN_OPTIONS=detect_leaks=0:handle_segv=0
endif

DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmnl libsodium 2>/dev/null)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs libmnl libsodium 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
CFLAGS += $(DEPS_CFLAGS)

# Fuzzers: clang and libFuzzer, whatever CC is. FUZZ_SECONDS is the time
# make fuzz-run gives each fuzzer.
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -g -O1
FUZZ_CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes
FUZZ_CFLAGS += -fno-strict-aliasing -D_GNU_SOURCE -fno-omit-frame-pointer $(DEPS_CFLAGS)
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 30
FUZZ_PKGS := pkg-config libmnl-dev libsodium-dev clang libclang-rt-dev

# Static analysis over every C file of the programs.
CPPCHECK ?= cppcheck
ANALYZE_DIRS := protocol common server client
ANALYZE_SRC = $(sort $(wildcard $(addsuffix /*.c,$(ANALYZE_DIRS))))
CPPCHECK_FLAGS := --enable=warning,portability,performance --error-exitcode=1 \
	--inline-suppr --std=c11 -D_GNU_SOURCE -q $(addprefix -I,$(ANALYZE_DIRS))

ifeq ($(V),1)
Q :=
say :=
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2);
endif

# Everything but the two main() files goes into one archive that the
# daemons, the unit tests, the fuzzers and the benchmarks link.
LIB_SRC := $(sort $(wildcard protocol/*.c common/*.c) \
	$(filter-out server/main.c,$(wildcard server/*.c)) \
	$(filter-out client/main.c,$(wildcard client/*.c)))
LIB_OBJ := $(LIB_SRC:.c=.o)
LIB := common/libwgd.a

BINS := server/wg-dynamic-server client/wg-dynamic-client
MANS := docs/wg-dynamic-server.8 docs/wg-dynamic-client.8
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:.c=)
HELPER_SRC := $(sort $(wildcard tests/e2e/*.c))
HELPER_BINS := $(HELPER_SRC:.c=)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BINS := $(BENCH_SRC:.c=)
# The end-to-end throughput benchmark's load generator and floor server,
# and the start-up benchmark's journal writer and device.
BENCH_HELPER_BINS := tests/bench/loadgen tests/bench/floor tests/bench/startup-rig
# The time-to-address benchmark's timer, woken by address notifications.
BENCH_HELPER_BINS += tests/bench/wait-addr
# The fuzzers link their own build of the parsers and what they call,
# instrumented as the fuzzers are.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:.c=)
FUZZ_LIB := tests/fuzz/build/libwgd-fuzz.a
FUZZ_LIB_SRC := protocol/ipaddr.c protocol/proto.c common/file.c common/rtnl.c \
	common/keyindex.c common/wgview.c \
	common/wgdev.c common/wgdev-genl.c common/wgdev-uapi.c server/journal.c \
	common/key.c common/log.c common/rng.c \
	client/state.c client/configure.c client/leasefile.c client/hook.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=tests/fuzz/build/%.o)
FUZZ_RUN = tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

all: $(BINS)

$(LIB): $(LIB_OBJ)
	$(call say,AR,$@)$(AR) rcs $@ $^

%.o: %.c
	$(call say,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

server/wg-dynamic-server: server/main.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(LDLIBS)

client/wg-dynamic-client: client/main.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(LDLIBS)

tests/unit/%.o: tests/unit/%.c
	$(call say,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

tests/unit/test_%: tests/unit/test_%.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(DEPS_LIBS) $(LDLIBS)

tests/e2e/%: tests/e2e/%.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(LDLIBS)

tests/bench/%: tests/bench/%.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(LDLIBS)

tests/fuzz/build/%.o: %.c
	@mkdir -p $(@D)
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	$(call say,AR,$@)$(AR) rcs $@ $^

tests/fuzz/%.o: tests/fuzz/%.c
	$(call say,FUZZCC,$@)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -c -o $@ $<

tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(call say,LINK,$@)$(FUZZ_CC) $(FUZZ_SANITIZE) -o $@ $^ $(DEPS_LIBS)

# The seed generator is an ordinary program over the ordinary library.
tests/fuzz/make-seeds.o: tests/fuzz/make-seeds.c
	$(call say,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

tests/fuzz/make-seeds: tests/fuzz/make-seeds.o $(LIB)
	$(call say,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(DEPS_LIBS) $(LDLIBS)

# The packages the build and the tests need, installed when missing.
deps:
	@tests/deps.sh

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

# mandoc -T lint -W warning must find nothing in the manual pages.
lint-man:
	@tests/lint-man.sh

e2e: $(BINS) $(HELPER_BINS)
	@$(E2E_ENV) tests/e2e/run.sh

# Figures, not pass or fail: see docs/performance.md. As root, with
# wireguard-go and wg installed, this ends with the end-to-end benchmarks.
BENCH_ALL := $(BINS) $(BENCH_BINS) $(BENCH_HELPER_BINS) tests/e2e/notify-recv
bench: $(BENCH_ALL)
	@tests/bench/run.sh $(BENCH_BINS)

# Every benchmark at small sizes, once: that they still run, in about a
# minute. CI runs it.
bench-smoke: $(BENCH_ALL)
	@BENCH_SMOKE=1 tests/bench/run.sh $(BENCH_BINS)

# One end-to-end benchmark alone.
bench-throughput: $(BINS) $(BENCH_HELPER_BINS)
	@tests/bench/throughput.sh

bench-startup: $(BINS) tests/bench/startup-rig tests/e2e/notify-recv
	@tests/bench/startup.sh

bench-time-to-address: $(BINS) tests/bench/wait-addr
	@tests/bench/time-to-address.sh

fuzz-build:
	@tests/deps.sh $(FUZZ_PKGS)
	@$(MAKE) --no-print-directory fuzz-bins

fuzz-bins: $(FUZZ_BINS)
	@:

# Builds the fuzzers; with FUZZ_SECONDS=N on the command line, runs them too.
fuzz: fuzz-build
	$(if $(filter command line,$(origin FUZZ_SECONDS)),@$(FUZZ_RUN),@:)

# Runs each fuzzer FUZZ_SECONDS on a copy of its seeds; fails on any finding.
fuzz-run: fuzz-build
	@$(FUZZ_RUN)

# Rewrites the binary seeds of tests/fuzz/corpus from tests/fuzz/make-seeds.c.
fuzz-seeds: tests/fuzz/make-seeds
	$(call say,SEEDS,tests/fuzz/corpus)tests/fuzz/make-seeds tests/fuzz/corpus

# cppcheck must find nothing. Clear false positives carry an inline
# suppression with the reason beside it.
# Both analyzers, each of which must report nothing.
analyze: analyze-cppcheck analyze-clang

analyze-cppcheck:
	@tests/deps.sh cppcheck
	$(call say,CPPCHK,'$(ANALYZE_DIRS)')$(CPPCHECK) $(CPPCHECK_FLAGS) $(ANALYZE_DIRS)

# The clang static analyzer (what scan-build runs) over the same files.
analyze-clang:
	@tests/deps.sh clang
	@st=0; for f in $(ANALYZE_SRC); do \
		$(if $(Q),printf '  %-6s %s\n' SCAN $$f;) \
		out=$$($(FUZZ_CC) --analyze -Xanalyzer -analyzer-output=text \
			-std=gnu11 -D_GNU_SOURCE $(DEPS_CFLAGS) -o /dev/null $$f 2>&1); \
		[ -z "$$out" ] || { printf '%s\n' "$$out"; st=1; }; \
	done; exit $$st

# Installs what is missing, then builds and runs every test.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(HELPER_BINS)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory lint-man
	@tests/systemd-verify.sh
	@$(MAKE) --no-print-directory e2e

# Runs the kernel WireGuard scenarios in a qemu VM, with Debian's kernel
# downloaded into tests/kernel/cache/ once; KERNEL_TESTS="NAME..." picks some.
check-kernel: deps
	@$(MAKE) --no-print-directory all
	@tests/kernel/run.sh $(KERNEL_TESTS)

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/e2e/demo.sh

UNITS := systemd/wg-dynamic-server@.service systemd/wg-dynamic-client@.service

# The server's engine runs as the system user wg-dynamic: created here
# when missing, unless staging into DESTDIR (a package creates it from the
# sysusers.d file instead).
install: $(BINS)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MANS) $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0644 $(UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -d $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 systemd/wg-dynamic.sysusers $(DESTDIR)$(SYSUSERSDIR)/wg-dynamic.conf
	@if [ -z "$(DESTDIR)" ] && ! getent passwd wg-dynamic >/dev/null; then \
		echo "useradd --system ... wg-dynamic"; \
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --user-group wg-dynamic; \
	fi

# Removes what install put in place; the user stays, as the owner of the
# engine's files in /var/lib/wg-dynamic/server.
uninstall:
	$(RM) $(addprefix $(DESTDIR)$(SBINDIR)/,$(notdir $(BINS)))
	$(RM) $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MANS)))
	$(RM) $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(notdir $(UNITS)))
	$(RM) $(DESTDIR)$(SYSUSERSDIR)/wg-dynamic.conf

clean:
	$(RM) $(LIB) $(BINS) $(UNIT_BINS) $(HELPER_BINS) $(BENCH_BINS) $(BENCH_HELPER_BINS) \
		$(FUZZ_BINS) tests/fuzz/make-seeds \
		$(shell find . -name '*.o' -o -name '*.d' | grep -v '^./.git')
	$(RM) -r tests/fuzz/build

.PHONY: analyze-cppcheck all deps unit lint-man e2e bench bench-smoke bench-throughput \
	bench-startup bench-time-to-address check check-kernel demo install uninstall clean fuzz \
	fuzz-build fuzz-bins fuzz-run fuzz-seeds analyze analyze-clang
.SECONDARY:

-include $(shell find . -name '*.d' -not -path './.git/*' 2>/dev/null)
