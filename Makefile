# synccf -- build, test, run.
#
#   make              build build/synccf and build/libsynccf.a
#   make test         everything CI runs: installs what is missing, builds, runs
#                     unit tests (plain and ASan+UBSan), integration, Worker tests
#   make run          the daemon on the embedded defaults
#   make fuzz         the libFuzzer targets, 30 s each (FUZZ_SECONDS=N), built in build-fuzz/
#   make bench        every benchmark in bench/, with its peers (bench/results/README.md)
#   make SAN=1 ...    the same targets built with AddressSanitizer + UBSan in build-asan/
#   make install      binary, library, header, synccf.pc, man pages, systemd unit, bash
#                     completion and example config under $(DESTDIR)$(PREFIX) (/usr/local)
#   make uninstall    removes exactly what make install put there
#   make clean        removes every build folder (build/, build-asan/, build-fuzz/, build-*/)

PKGS     := libmicrohttpd jansson sqlite3 libcurl libcrypto zlib yaml-0.1
CC       ?= cc
SAN      ?= 0
ifeq ($(SAN),1)
BUILD    ?= build-asan
OPT      := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD    ?= build
OPT      := -O2
endif
# systemd readiness/watchdog notifications when libsystemd is there.
ifeq ($(shell pkg-config --exists libsystemd && echo yes),yes)
PKGS     += libsystemd
CFLAGS   += -DHAVE_SYSTEMD
endif
# -MMD -MP: each object also writes the list of headers it includes (a .d
# file beside it, included below), so a header change rebuilds exactly the
# objects that use it.
CFLAGS   += -MMD -MP -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -g $(OPT) \
            -Iinclude $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
LDFLAGS  += -Wl,--as-needed $(filter -fsanitize=%,$(OPT))

LIB_SRC  := $(wildcard lib/*.c)
CLI_SRC  := $(wildcard src/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all unit test run clean deps fuzz bench demo install uninstall print-lib-src
all: $(BUILD)/synccf $(BUILD)/libsynccf.a $(BUILD)/examples/on_event

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsynccf.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/synccf: $(CLI_OBJ) $(BUILD)/libsynccf.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libsynccf.a include/synccf.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsynccf.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsynccf.a
	@mkdir -p $(dir $@)
	@echo "  TEST $@"; $(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsynccf.a $(LDLIBS) -lcmocka

# The headers each object and test includes, from its last build (-MMD -MP).
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_BIN:=.d) $(BUILD)/examples/on_event.d

# The library's sources, one a line: tests/fuzz/run.sh builds its targets
# from this list rather than keeping its own.
print-lib-src:
	@printf '%s\n' $(LIB_SRC)

# Unit tests run from the tree root so that tests/vectors/ is found.
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

deps:
	@scripts/deps.sh

test:
	@scripts/test.sh

fuzz:
	@tests/fuzz/run.sh $(or $(FUZZ_SECONDS),30)

bench:
	@bench/run.sh

demo:
	@scripts/demo.sh

run: all
	$(BUILD)/synccf receive

# build/ and build-asan/ (make, make SAN=1), build-fuzz/ (tests/fuzz/run.sh)
# and any other BUILD=build-<name>.
clean:
	rm -rf build build-*

# ---- install ---------------------------------------------------------------
# The layout (tests/install/run.sh checks it). The Debian package builds with
# PREFIX=/usr, a multiarch LIBDIR and SYSTEMDUNITDIR=/lib/systemd/system.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
DOCDIR         ?= $(DATADIR)/doc/synccf
BASHCOMPDIR    ?= $(DATADIR)/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
VERSION        := $(shell sed -n 's/^\#define SYNCCF_VERSION "\(.*\)"/\1/p' include/synccf.h)
MANPAGES       := man/synccf.1 man/synccf.yaml.5
INSTALLED      := $(BINDIR)/synccf $(LIBDIR)/libsynccf.a $(INCLUDEDIR)/synccf.h $(PKGCONFIGDIR)/synccf.pc \
                  $(MANDIR)/man1/synccf.1 $(MANDIR)/man5/synccf.yaml.5 $(SYSTEMDUNITDIR)/synccf.service \
                  $(BASHCOMPDIR)/synccf $(DOCDIR)/synccf.yaml $(DOCDIR)/on_event.c

install: $(BUILD)/synccf $(BUILD)/libsynccf.a
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) \
	    $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/synccf $(DESTDIR)$(BINDIR)/synccf
	install -m 0644 $(BUILD)/libsynccf.a $(DESTDIR)$(LIBDIR)/libsynccf.a
	install -m 0644 include/synccf.h $(DESTDIR)$(INCLUDEDIR)/synccf.h
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@includedir@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    -e 's|@version@|$(VERSION)|' -e 's|@requires@|$(PKGS)|' dist/synccf.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/synccf.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/synccf.pc
	install -m 0644 man/synccf.1 $(DESTDIR)$(MANDIR)/man1/synccf.1
	install -m 0644 man/synccf.yaml.5 $(DESTDIR)$(MANDIR)/man5/synccf.yaml.5
	sed -e 's|@bindir@|$(BINDIR)|' dist/synccf.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/synccf.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/synccf.service
	install -m 0644 dist/synccf.bash-completion $(DESTDIR)$(BASHCOMPDIR)/synccf
	install -m 0644 examples/synccf.yaml $(DESTDIR)$(DOCDIR)/synccf.yaml
	install -m 0644 examples/on_event.c $(DESTDIR)$(DOCDIR)/on_event.c

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
