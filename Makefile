# snapmove: make, make check, make demo, make install (PREFIX, DESTDIR),
# make SANITIZE=address,undefined check, make bench.  make integration (and
# check) test build-test/snapmove, built with the test hooks (TEST_BUILD=1).

PREFIX ?= /usr/local
DESTDIR ?=
# TEST_BUILD=1: the test hooks compiled in (SM_TEST_BUILD), in build-test/;
# make integration builds and tests that binary.
BUILD ?= build$(if $(SANITIZE),-sanitize)$(if $(TEST_BUILD),-test)
TEST_BIN = build$(if $(SANITIZE),-sanitize)-test/snapmove

CC ?= cc
PKGS = libvirt libxml-2.0 sqlite3 json-c libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wvla \
       -Wshadow -Wpointer-arith -Wformat=2 -Wswitch-enum -Wno-switch-default
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Isrc -I$(BUILD) $(PKG_CFLAGS) -pthread
ALL_LDFLAGS = $(LDFLAGS) -pthread
ifneq ($(TEST_BUILD),)
ALL_CFLAGS += -DSM_TEST_BUILD
endif
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# In reading order (see README "Source layout").
LIB_SRCS = src/util.c src/run.c src/job.c src/journal.c \
	   src/chain/chain.c src/chain/image.c src/chain/plan.c src/chain/usage.c \
	   src/virt.c src/snapshot/snapshot.c src/snapshot/blockjob.c src/snapshot/define.c \
	   src/copy/ratelimit.c src/copy/checksum.c src/copy/copy.c src/progress.c src/events.c \
	   src/pool.c src/lock.c src/hooks.c src/job_run.c src/reconcile.c src/move.c src/resume.c src/abort.c src/cleanup.c \
	   src/balance/plan.c src/balance/inventory.c src/balance/rebalance.c
CLI_SRCS = src/main.c src/cli.c src/cmd_move.c src/cmd_jobs.c src/cmd_chain.c src/cmd_copy.c src/cmd_resume.c src/cmd_verify.c src/cmd_cleanup.c \
	   src/cmd_rebalance.c
UNIT_TESTS = test_chain test_plan test_journal test_copy test_image test_define test_ratelimit test_checksum test_balance test_hooks

LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS = $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS = $(UNIT_TESTS:%=$(BUILD)/tests/%)

all: $(BUILD)/snapmove

$(BUILD)/schema.inc: $(sort $(wildcard schema/*.sql))
	@mkdir -p $(@D)
	for f in $^; do \
		sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' "$$f"; \
		echo ','; \
	done > $@.tmp && mv $@.tmp $@

$(BUILD)/src/journal.o: $(BUILD)/schema.inc

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libsnapmove.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/snapmove: $(CLI_OBJS) $(BUILD)/libsnapmove.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsnapmove.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSM_FIXTURES=\"$(CURDIR)/tests/unit/fixtures\" -o $@ $< \
		$(BUILD)/libsnapmove.a $(ALL_LDFLAGS) $(PKG_LIBS) $(TEST_LIBS)

setup:
	bash scripts/setup.sh

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: $(BUILD)/snapmove
	$(MAKE) TEST_BUILD=1 all
	SNAPMOVE=$(CURDIR)/$(TEST_BIN) SNAPMOVE_RELEASE=$(CURDIR)/$(BUILD)/snapmove \
		bash tests/integration/run.sh $(T)

# check: set up the host, build, run every test.
check: setup
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

demo: setup
	$(MAKE) all
	SNAPMOVE=$(CURDIR)/$(BUILD)/snapmove bash scripts/demo.sh

bench: setup
	$(MAKE) all
	bash bench/run.sh

install: $(BUILD)/snapmove
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/snapmove $(DESTDIR)$(PREFIX)/bin/snapmove
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/snapmove.1 $(DESTDIR)$(PREFIX)/share/man/man1/snapmove.1
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 completion/snapmove.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/snapmove

clean:
	rm -rf build build-sanitize build-test build-sanitize-test

.PHONY: all setup unit integration check demo bench install clean
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
