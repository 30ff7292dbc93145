# snapmove: make, make check, make demo, make install (PREFIX, DESTDIR),
# make SANITIZE=address,undefined check, make bench, make fuzz.  make integration
# (and check) test build-test/snapmove, built with the test hooks (TEST_BUILD=1).

PREFIX ?= /usr/local
DESTDIR ?=
# TEST_BUILD=1: the test hooks compiled in (SM_TEST_BUILD), in build-test/;
# make integration builds and tests that binary.
BUILD ?= build$(if $(SANITIZE),-sanitize)$(if $(TEST_BUILD),-test)
TEST_BIN = build$(if $(SANITIZE),-sanitize)-test/snapmove

CC ?= cc
PKGS = libvirt libvirt-qemu libxml-2.0 sqlite3 json-c libxxhash inih liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wvla \
       -Wshadow -Wpointer-arith -Wformat=2 -Wswitch-enum -Wno-switch-default
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Isrc -I$(BUILD) $(PKG_CFLAGS) -pthread
ALL_LDFLAGS = $(LDFLAGS) -pthread
# Where the provisioners (contrib/provisioners/) are installed and where a
# --provisioner named without a '/' is looked up.
PROVISIONERS_DIR ?= $(PREFIX)/lib/snapmove/provisioners
ALL_CFLAGS += -DSM_PROVISIONERS_DIR='"$(PROVISIONERS_DIR)"'
ifneq ($(TEST_BUILD),)
ALL_CFLAGS += -DSM_TEST_BUILD
endif
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=$(SANITIZE)
# Every finding fails the test that ran into it: ASan, LeakSanitizer and UBSan
# stop the program with status 87 (no exit status of snapmove), UBSan at its
# first report too.  Leaks of libvirt and libxml2 themselves are suppressed
# (tests/lsan.supp), never snapmove's.  make integration also writes ASan and
# LSan reports to $(SAN_LOGS)/TEST (run.sh sets log_path per test, as tests
# run at once), and run.sh fails a test that left one there
# (a snapmove whose status the test ignores too).  Set in the environment
# to override.  verify_asan_link_order=0: t0082 runs snapmove with LD_PRELOAD set
# (to see that no child gets it).
SAN_LOGS = $(CURDIR)/$(BUILD)/sanitizer
export ASAN_OPTIONS ?= detect_leaks=1:exitcode=87:print_suppressions=0:verify_asan_link_order=0
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1:exitcode=87
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
endif

# In reading order (see README "Source layout").
LIB_SRCS = src/util.c src/run.c src/states.c src/journal/journal.c src/journal/rows.c src/journal/jobs.c src/journal/files.c src/journal/images.c src/journal/rebalance.c src/journal/devices.c \
	   src/chain/chain.c src/chain/image.c src/chain/plan.c src/chain/usage.c src/chain/imagelock.c \
	   src/virt.c src/snapshot/snapshot.c src/snapshot/blockjob.c src/snapshot/blockjob_qmp.c src/snapshot/define.c \
	   src/copy/ratelimit.c src/copy/checksum.c src/copy/extents.c src/copy/io.c src/copy/buffered.c src/copy/direct.c src/copy/uring.c \
	   src/copy/chunk.c src/copy/verify.c src/copy/run.c src/progress.c src/config.c src/log.c src/events.c \
	   src/pool.c src/lock.c src/trust.c src/hooks.c src/provision.c \
	   src/job/ctx.c src/job/hook_facts.c src/job/files.c src/job/chaincheck.c src/job/snapshot.c src/job/mirror.c src/job/copy.c \
	   src/job/sync.c src/job/collapse.c src/job/finalize.c src/job/runner.c src/job/result.c src/job/reconcile.c src/job/existing.c src/job/offline.c src/job/outcome.c src/job/validate.c src/job/destdev.c src/job/provdev.c src/job/ovdev.c src/job/grow.c src/job/move.c src/job/resume.c src/job/abort.c src/cleanup.c src/srcfile.c \
	   src/balance/plan.c src/balance/inventory.c src/balance/rebalance.c src/report.c
CLI_SRCS = src/cli/main.c src/cli/cli.c src/cli/cmd_move.c src/cli/cmd_jobs.c src/cli/cmd_chain.c src/cli/cmd_copy.c src/cli/cmd_resume.c src/cli/cmd_recover.c src/cli/cmd_config.c \
	   src/cli/cmd_verify.c src/cli/cmd_cleanup.c src/cli/cmd_rebalance.c src/cli/cmd_provision.c
UNIT_TESTS = test_util test_chain test_plan test_journal test_copy test_image test_define test_ratelimit test_checksum test_balance test_imagelock test_srcfile test_blockjob test_hooks test_provision test_reconcile test_phases test_report test_destdev

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

$(BUILD)/src/journal/journal.o: $(BUILD)/schema.inc

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
		$(if $(SANITIZE),SM_SANITIZER_LOGS=$(SAN_LOGS)) \
		bash tests/integration/run.sh $(T)

# check: set up the host, build, run every test.
check: setup
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_TIME=15
	$(MAKE) package
	$(MAKE) integration

demo: setup
	$(MAKE) all
	SNAPMOVE=$(CURDIR)/$(BUILD)/snapmove bash scripts/demo.sh

bench: setup
	$(MAKE) all
	bash bench/run.sh

# fuzz: libFuzzer targets for every parser of outside input (tests/fuzz/),
# built with clang, ASan and UBSan in build-fuzz/; each runs FUZZ_TIME seconds
# from its seed corpus and any crash fails (make check runs 15 s each;
# make fuzz FUZZ_TIME=600 by hand).  Crashing inputs: build-fuzz/crashes/.
FUZZ_CC ?= clang-14
FUZZ_TIME ?= 60
FUZZ_BUILD = build-fuzz
FUZZ_TARGETS = fuzz_image_info fuzz_domain_xml fuzz_define_xml fuzz_journal_rows
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

$(FUZZ_BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libsnapmove.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libsnapmove.a \
		$(ALL_LDFLAGS) -fsanitize=fuzzer $(PKG_LIBS)

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
		LDFLAGS="$(FUZZ_SAN)" SANITIZE= $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/%)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crashes
	@fail=0; for t in $(FUZZ_TARGETS); do \
		c=$${t#fuzz_}; mkdir -p $(FUZZ_BUILD)/corpus/$$c; echo "== $$t ($(FUZZ_TIME) s)"; \
		$(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- \
			$(FUZZ_BUILD)/corpus/$$c tests/fuzz/corpus/$$c >$(FUZZ_BUILD)/$$t.log 2>&1 \
			|| { tail -n 40 $(FUZZ_BUILD)/$$t.log; fail=1; }; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' $(FUZZ_BUILD)/$$t.log || true; \
	done; exit $$fail

install: $(BUILD)/snapmove
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/snapmove $(DESTDIR)$(PREFIX)/bin/snapmove
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 man/snapmove.1 $(DESTDIR)$(PREFIX)/share/man/man1/snapmove.1
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 completion/snapmove.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/snapmove
	install -d $(DESTDIR)$(PROVISIONERS_DIR)
	install -m 0755 contrib/provisioners/loop contrib/provisioners/lvm \
		$(DESTDIR)$(PROVISIONERS_DIR)/

# deb: the Debian package (debian/) in build/deb/, made by dpkg-buildpackage in
# a copy of the tree (the tree's build/ and debian/ stay as they are); installs
# dpkg-dev and debhelper first when they are missing (as root, as setup.sh).
# This make's variables (SANITIZE=, TEST_BUILD=, CFLAGS=, ...) do not reach it.
# package: build, install, upgrade, remove and purge it (tests/package/).
DEB_TOOLS = dpkg-dev debhelper

deb:
	@missing=; for p in $(DEB_TOOLS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || \
			missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "deb: missing packages:$$missing; run 'make deb' as root to install them" >&2; \
			exit 1; \
		fi; \
		echo "deb: installing$$missing" >&2; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $$missing >&2; \
	fi
	rm -rf build/deb
	mkdir -p build/deb/src/snapmove
	tar -c --exclude=./build --exclude='./build-*' --exclude=./.git . | tar -x -C build/deb/src/snapmove
	cd build/deb/src/snapmove && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE \
		-u TEST_BUILD -u BUILD -u CC -u CFLAGS -u LDFLAGS -u PREFIX -u DESTDIR \
		dpkg-buildpackage -b -us -uc -Jauto
	mv build/deb/src/*.deb build/deb/src/*.buildinfo build/deb/src/*.changes build/deb/
	rm -rf build/deb/src
	@ls -l build/deb/*.deb

package:
	bash tests/package/test-deb.sh

.PHONY: deb package

clean:
	rm -rf build build-sanitize build-fuzz build-test build-sanitize-test

.PHONY: all setup unit integration check demo bench install clean fuzz fuzz-build
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
