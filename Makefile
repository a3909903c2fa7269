# SPDX-License-Identifier: MIT

PREFIX ?= /usr
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
PKG_CONFIG ?= pkg-config

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes
CFLAGS += -fno-strict-aliasing -D_GNU_SOURCE
CPPFLAGS += -MMD -MP
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmnl libsodium 2>/dev/null)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs libmnl libsodium 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
CFLAGS += $(DEPS_CFLAGS)

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
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:.c=)
HELPER_SRC := $(sort $(wildcard tests/e2e/*.c))
HELPER_BINS := $(HELPER_SRC:.c=)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BINS := $(BENCH_SRC:.c=)

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

# The packages the build and the tests need, installed when missing.
deps:
	@tests/deps.sh

unit: $(UNIT_BINS)
	@tests/run-unit.sh $(UNIT_BINS)

e2e: $(BINS) $(HELPER_BINS)
	@tests/e2e/run.sh

# Figures, not pass or fail: see docs/journal.md.
bench: $(BENCH_BINS)
	@tests/bench/run.sh $(BENCH_BINS)

# Installs what is missing, then builds and runs every test.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(HELPER_BINS)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/e2e/demo.sh

install: $(BINS)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(SBINDIR)/

clean:
	$(RM) $(LIB) $(BINS) $(UNIT_BINS) $(HELPER_BINS) $(BENCH_BINS) \
		$(shell find . -name '*.o' -o -name '*.d' | grep -v '^./.git')

.PHONY: all deps unit e2e bench check demo install clean
.SECONDARY:

-include $(shell find . -name '*.d' -not -path './.git/*' 2>/dev/null)
