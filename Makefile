# ccbroker - plain Makefile.  `make`, `make check`, `make demo`, `make bench`,
# `make install`, `make clean`.  A sanitizer build goes to build/san.

BUILD	?= build
# One name per object: a BUILD given as an absolute path inside the tree
# (test_install does) is made relative, or the dependency files written
# under one name would not apply to the other and headers would be missed.
override BUILD := $(patsubst $(CURDIR)/%,%,$(BUILD))
PREFIX	?= /usr/local
DESTDIR	?=

PKGS	 = libzmq msgpack lmdb jansson inih uuid openssl
TESTPKGS = criterion

CC	?= cc
CSTD	 = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith
HARDEN	 = -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT	?= -O2 -g
ifeq ($(SAN),1)
OPT	 = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=undefined
HARDEN	 = -fstack-protector-strong
LDSAN	 = -fsanitize=address,undefined
endif

# Lazy (=): evaluated when a recipe runs, after deps.sh installed them.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
TEST_LIBS  = $(shell pkg-config --libs $(TESTPKGS))

CFLAGS	 = $(CSTD) $(WARN) $(HARDEN) $(OPT) -fPIC -Iinclude -Iproto \
	   -Ibroker -Iagent $(PKG_CFLAGS) -MMD -MP
LDFLAGS	+= $(LDSAN)
LDLIBS	 = $(PKG_LIBS) -lpthread

PROTO_SRC  = $(wildcard proto/*.c)
BROKER_SRC = $(filter-out broker/main.c,$(wildcard broker/*.c))
AGENTLIB_SRC = $(wildcard agent/cc_*.c agent/config.c)
AGENT_SRC  = $(filter-out agent/main.c $(AGENTLIB_SRC),$(wildcard agent/*.c))

PROTO_OBJ  = $(PROTO_SRC:%.c=$(BUILD)/obj/%.o)
BROKER_OBJ = $(BROKER_SRC:%.c=$(BUILD)/obj/%.o)
AGENTLIB_OBJ = $(AGENTLIB_SRC:%.c=$(BUILD)/obj/%.o)
AGENT_OBJ  = $(AGENT_SRC:%.c=$(BUILD)/obj/%.o)

LIBPROTO  = $(BUILD)/lib/libccproto.a
LIBBROKER = $(BUILD)/lib/libccbroker.a
LIBAGENT_A = $(BUILD)/lib/libccagent.a
LIBAGENT_SO = $(BUILD)/lib/libccagent.so.1
LIBAGENTX = $(BUILD)/lib/libccagentx.a

BINS	 = $(BUILD)/bin/ccbroker $(BUILD)/bin/ccagent
# The C API example (examples/capi.c) against the shared library, and the
# pkg-config file for case systems that link libccagent.
AGENT_EXAMPLE = $(BUILD)/bin/ccagent-example
AGENT_PC = $(BUILD)/lib/pkgconfig/ccagent.pc

UNIT_SRC = $(wildcard tests/unit/test_*.c)
INT_SRC  = $(wildcard tests/integration/test_*.c)
TESTLIB_SRC = $(wildcard tests/lib/*.c)
TESTLIB_OBJ = $(TESTLIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INT_BIN  = $(INT_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)

DEPS_OK	 = .deps-ok

.PHONY: all check check-plain check-san test demo bench clean install deps \
	conformance
all: $(BINS) $(LIBAGENT_SO) $(LIBAGENT_A) $(AGENT_EXAMPLE) $(AGENT_PC)

# Install missing Debian packages once; every compile waits for it.
$(DEPS_OK): scripts/deps.sh
	@pkg-config --exists $(PKGS) $(TESTPKGS) && \
	  dpkg-query -W python3-zmq python3-msgpack python3-cryptography \
	    lmdb-utils >/dev/null 2>&1 || ./scripts/deps.sh
	@touch $@
deps: $(DEPS_OK)

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBPROTO): $(PROTO_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBBROKER): $(BROKER_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBAGENT_A): $(AGENTLIB_OBJ) $(PROTO_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBAGENTX): $(AGENT_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
$(LIBAGENT_SO): $(AGENTLIB_OBJ) $(PROTO_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libccagent.so.1 $(LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf libccagent.so.1 $(BUILD)/lib/libccagent.so

$(BUILD)/bin/ccbroker: $(BUILD)/obj/broker/main.o $(LIBBROKER) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bin/ccagent: $(BUILD)/obj/agent/main.o $(LIBAGENTX) $(LIBAGENT_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(AGENT_EXAMPLE): examples/capi.c include/ccagent.h $(LIBAGENT_SO)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(OPT) -Iinclude $(LDFLAGS) -o $@ examples/capi.c \
	    -L$(BUILD)/lib -lccagent -Wl,-rpath,$(abspath $(BUILD)/lib)
$(AGENT_PC): agent/ccagent.pc.in include/ccagent.h
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e "s|@VERSION@|$$(sed -n \
	    's/.*CC_AGENT_VERSION[^"]*"\(.*\)".*/\1/p' include/ccagent.h)|g" \
	    agent/ccagent.pc.in >$@

# Each test binary links every library; the linker keeps what it uses.
TEST_LINK = $(TESTLIB_OBJ) $(LIBBROKER) $(LIBAGENTX) $(LIBAGENT_A) $(LIBPROTO)
POWERCUT = $(BUILD)/tests/libpowercut.so $(BUILD)/tests/powercut-apply
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_LINK)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)
$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(TEST_LINK) $(BINS) \
    $(POWERCUT)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(BINS) $(POWERCUT),$^) $(LDLIBS) \
	    $(TEST_LIBS)

# The power-cut simulator (tests/powercut/): an LD_PRELOAD library, built
# without sanitizers or _FORTIFY_SOURCE since it replaces open() and write(),
# and the tool that undoes what a power cut would have lost.
# Static patterns: a file named only in a pattern rule would be an
# intermediate one, which make does not rebuild when it is missing.
$(BUILD)/tests/libpowercut.so: $(BUILD)/tests/lib%.so: tests/powercut/%.c \
    tests/powercut/powercut.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -U_FORTIFY_SOURCE -O2 -g -shared \
	    -fPIC -o $@ $< -ldl -lpthread
$(BUILD)/tests/powercut-apply: $(BUILD)/tests/%: tests/powercut/%.c \
    tests/powercut/powercut.h
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(HARDEN) $(OPT) $(LDFLAGS) -o $@ $<

tests: $(UNIT_BIN) $(INT_BIN)

# Run every test binary; CC_BUILD tells integration tests which build.
test: all tests
	@set -e; export CC_BUILD=$(abspath $(BUILD)) \
	  CC_SRC=$(CURDIR); \
	for t in $(UNIT_BIN) $(INT_BIN); do \
	  echo "== $$t"; $$t --jobs 1 $(CRITERION_FLAGS); done

# Builds run in parallel (one job per core).  The tests of one build run
# one at a time, but the plain and the sanitizer suites run side by side:
# most of a test's time is spent waiting (fsync, timers, handshakes), so
# two streams finish in little more than the longer one alone.  Each
# writes its own log, shown whole when it fails.
JOBS	?= $(shell nproc 2>/dev/null || echo 2)
CHECK_LOG = build/log
check: $(DEPS_OK)
	$(MAKE) -j$(JOBS) all tests
	$(MAKE) -j$(JOBS) BUILD=build/san SAN=1 all tests
	@mkdir -p $(CHECK_LOG); \
	echo "== the plain and the ASan/UBSan suites, side by side" \
	    "(logs: $(CHECK_LOG)/test-plain.log, $(CHECK_LOG)/test-san.log)"; \
	$(MAKE) -s test >$(CHECK_LOG)/test-plain.log 2>&1 & plain=$$!; \
	$(MAKE) -s BUILD=build/san SAN=1 test >$(CHECK_LOG)/test-san.log \
	    2>&1 & san=$$!; \
	fail=0; \
	if wait $$plain; then grep -c '^== ' $(CHECK_LOG)/test-plain.log | \
	    sed 's/$$/ test programs passed (plain)/'; \
	else cat $(CHECK_LOG)/test-plain.log; fail=1; fi; \
	if wait $$san; then grep -c '^== ' $(CHECK_LOG)/test-san.log | \
	    sed 's/$$/ test programs passed (ASan\/UBSan)/'; \
	else cat $(CHECK_LOG)/test-san.log; fail=1; fi; \
	test $$fail -eq 0
	$(MAKE) fuzz-regress
	@echo "make check: all tests passed, plain and under ASan/UBSan;" \
	    "fuzz corpora clean"

conformance: all
	/usr/bin/python3 ../shared/conformance/conformance.py .

demo: $(DEPS_OK)
	$(MAKE) all
	./scripts/demo.sh $(BUILD)

BENCH_BIN = $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/bench_*.c))
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBBROKER) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# `make bench` (issue 13, not part of `make check`): Mosquitto and NATS
# come from Debian (deps.sh bench); the load generator, the null broker,
# the bare CurveZMQ relay and the report are built here, and bench/run.sh
# runs them all side by side on loopback (bench_decide among them).
BENCH_DEPS_OK = $(BUILD)/.deps-bench-ok
BENCH_LIBS = libmosquitto libnats
BENCH_LG_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,bench/loadgen.c \
	$(wildcard bench/lg_*.c))
BENCH_TOOLS = $(BUILD)/bench/loadgen $(BUILD)/bench/nullbroker \
	$(BUILD)/bench/rawrelay $(BUILD)/bench/report
$(BENCH_DEPS_OK): scripts/deps.sh
	./scripts/deps.sh bench
	@mkdir -p $(@D) && touch $@
$(BENCH_LG_OBJ): | $(BENCH_DEPS_OK)
# Objects the pattern rule makes are kept, so that make deletes nothing
# after run.sh has printed its last lines.
.SECONDARY: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/*.c))
$(BUILD)/bench/loadgen: $(BENCH_LG_OBJ) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) \
	    $(shell pkg-config --libs $(BENCH_LIBS))

bench: all $(BENCH_BIN) $(BENCH_TOOLS)
	./bench/run.sh $(BUILD)

# `make install`: binaries, the agent library with its headers and a
# pkg-config file for $(PREFIX), man pages, example configurations and
# documents, and the systemd units with ExecStart in $(BINDIR).  DESTDIR
# stages the whole tree for packaging.  Users, /etc and the data
# directories are the administrator's (docs/OPERATIONS.md).
BINDIR	 = $(PREFIX)/bin
LIBDIR	 = $(PREFIX)/lib
INCLUDEDIR = $(PREFIX)/include
PKGCONFIGDIR = $(LIBDIR)/pkgconfig
MANDIR	 = $(PREFIX)/share/man
DOCDIR	 = $(PREFIX)/share/doc/ccbroker
UNITDIR	 = $(PREFIX)/lib/systemd/system
INSTALL	?= install
INSTALL_MAN5  = docs/ccbroker.conf.5 docs/ccagent.conf.5
INSTALL_MAN8  = docs/ccbroker.8 docs/ccagent.8
INSTALL_UNITS = scripts/ccbroker.service scripts/ccagent.service
INSTALL_DOCS  = etc/broker.conf.example etc/agent.conf.example \
		docs/PROTOCOL.md docs/OPERATIONS.md

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0755 $(LIBAGENT_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libccagent.so.1 $(DESTDIR)$(LIBDIR)/libccagent.so
	$(INSTALL) -m 0644 $(LIBAGENT_A) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 0644 include/ccagent.h include/cc_proto.h \
	    $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e "s|@VERSION@|$$(sed -n \
	    's/.*CC_AGENT_VERSION[^"]*"\(.*\)".*/\1/p' include/ccagent.h)|g" \
	    agent/ccagent.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/ccagent.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/ccagent.pc
	$(INSTALL) -m 0644 $(INSTALL_MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(INSTALL_MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	set -e; for u in $(INSTALL_UNITS); do \
	  sed 's|/usr/local/bin/|$(BINDIR)/|g' $$u \
	    >$(DESTDIR)$(UNITDIR)/$${u##*/}; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

clean:
	rm -rf build $(DEPS_OK)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- fuzzing
# libFuzzer harnesses (fuzz/fuzz_NAME.c), built with clang, ASan and UBSan
# over the proto/ objects and the two config loaders, compiled again into
# build/fuzz/obj with -fsanitize=fuzzer-no-link.  clang and its runtime come
# from `scripts/deps.sh fuzz`.
#   make fuzz          runs each harness for FUZZ_SECONDS (default 60);
#                      new inputs go to build/fuzz/corpus/NAME, crashes to
#                      build/fuzz/artifacts/.  FUZZ=decode runs only one,
#                      FUZZ_FLAGS adds libFuzzer options; fuzz/NAME.dict,
#                      when there is one, holds the schema's words.
#   make fuzz-regress  runs each harness once over fuzz/corpus/NAME (seeds
#                      and past crashes); part of `make check`.
FUZZ_CC		 = clang
FUZZ_SECONDS	?= 60
FUZZ_BUILD	 = build/fuzz
FUZZ		?= decode json config pki
FUZZ_ALL	 = decode json config pki
FUZZ_CFLAGS	 = $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer \
		   -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		   -Iinclude -Iproto -Ibroker -Iagent $(PKG_CFLAGS) -MMD -MP
FUZZ_LIB_SRC	 = $(PROTO_SRC) broker/config.c agent/config.c
FUZZ_LIB	 = $(FUZZ_BUILD)/libccfuzz.a
FUZZ_BIN	 = $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_DEPS_OK	 = $(FUZZ_BUILD)/.deps-ok

.PHONY: fuzz fuzz-regress fuzz-bin
fuzz-bin: $(FUZZ_BIN)

$(FUZZ_DEPS_OK): scripts/deps.sh | $(DEPS_OK)
	./scripts/deps.sh fuzz
	@mkdir -p $(@D)
	@touch $@

$(FUZZ_BUILD)/obj/%.o: %.c | $(FUZZ_DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
	$(AR) rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB) | $(FUZZ_DEPS_OK)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) \
	    $(PKG_LIBS) -lpthread

fuzz: $(FUZZ_BIN)
	@set -e; mkdir -p $(FUZZ_BUILD)/artifacts; for n in $(FUZZ); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== fuzz_$$n for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$n- \
	    $$(test ! -f fuzz/$$n.dict || echo -dict=fuzz/$$n.dict) \
	    $(FUZZ_FLAGS) $(FUZZ_BUILD)/corpus/$$n fuzz/corpus/$$n; done

fuzz-regress: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_BUILD)/log; for n in $(FUZZ_ALL); do \
	  printf '== fuzz_%s over fuzz/corpus/%s: ' $$n $$n; \
	  if $(FUZZ_BUILD)/fuzz_$$n -runs=0 fuzz/corpus/$$n \
	      >$(FUZZ_BUILD)/log/$$n.regress.log 2>&1; then \
	    echo "$$(ls fuzz/corpus/$$n | wc -l) inputs clean"; \
	  else echo FAILED; cat $(FUZZ_BUILD)/log/$$n.regress.log; exit 1; fi; done

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- valgrind
# `make check-valgrind`: memcheck over the plain build.  The unit tests run
# under valgrind, every criterion worker too; then the integration tests
# in VG_INT run with the broker they start under valgrind, through
# CC_BROKER_WRAPPER (tests/lib/harness.c).  Reports go to $(BUILD)/valgrind/;
# any memory error or definite or possible leak in them fails the target
# (a broker with one also exits 99, which fails its test).  Not part of
# `make check`: it takes many minutes.  VG_INT="test_x ..." picks others;
# test_powercut is left out: its simulated power cut ends the broker with
# _exit mid-flight, and memcheck counts all it held as lost.
VG_DIR		 = $(BUILD)/valgrind
VG_INT		?= test_routing test_auth test_consent_wire test_audit \
		   test_expiry test_stats test_agent test_demo
VALGRIND	 = valgrind --leak-check=full --error-exitcode=99 \
		   --errors-for-leak-kinds=definite,possible --num-callers=30
VG_DEPS_OK	 = $(BUILD)/.valgrind-ok

.PHONY: check-valgrind
$(VG_DEPS_OK): scripts/deps.sh | $(DEPS_OK)
	./scripts/deps.sh valgrind
	@mkdir -p $(@D)
	@touch $@

check-valgrind: all tests | $(VG_DEPS_OK)
	@rm -rf $(VG_DIR); mkdir -p $(VG_DIR); fail=0; \
	export CC_BUILD=$(abspath $(BUILD)) CC_SRC=$(CURDIR); \
	for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
	  $(VALGRIND) --trace-children=yes --trace-children-skip='/bin/*,/usr/*' \
	    --log-file=$(VG_DIR)/$${t##*/}.%p.log $$t --jobs 1 \
	    $(CRITERION_FLAGS) || fail=1; done; \
	export CC_BROKER_WRAPPER="$(VALGRIND) \
	    --log-file=$(abspath $(VG_DIR))/broker.%p.log"; \
	for t in $(VG_INT); do echo "== $$t, the broker under valgrind"; \
	  $(BUILD)/tests/integration/$$t --jobs 1 $(CRITERION_FLAGS) || \
	    fail=1; done; \
	bad=$$(grep -l 'ERROR SUMMARY: [1-9]' $(VG_DIR)/*.log); \
	for f in $$bad; do echo "== $$f"; cat $$f; done; \
	echo "check-valgrind: $$(ls $(VG_DIR) | wc -l) processes checked," \
	  "$$(grep -l 'ERROR SUMMARY: 0 ' $(VG_DIR)/broker.*.log 2>/dev/null | \
	  wc -l) broker runs clean, $$(echo $$bad | wc -w) with errors"; \
	test $$fail = 0 && test -z "$$bad"
