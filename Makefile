# sse-engine: the entry point for humans. `make demo`, `make test`, `make bench`.
# Every target first runs .ci/setup, which installs what a fresh machine lacks.

PREFIX   ?= /usr/local
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
CARGO    ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: setup demo test lint header header-check test-rust test-c test-node test-python test-bench bench bench-smoke bench-fanout bench-channels bench-cluster bench-storm bench-flood lib pc install clean

setup:
	@bash .ci/setup

## The demo: an HTTP server handing EventSource streams to the engine (prints its URL).
demo: setup
	$(CARGO) run --quiet -p sse-demo-clock -- $(PORT)

## Every test: formatting, lints, header drift, Rust tests, C tests under ASan/UBSan,
## the Node and Python bindings' tests.
test: setup lint header-check test-rust test-c test-node test-python test-bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	$(CARGO) clippy -p sse_engine -p sse_bench --features sse_engine/cluster,sse_bench/cluster --all-targets --quiet -- -D warnings

## Regenerate the committed C header.
header:
	cd ffi-c && cbindgen --quiet --config cbindgen.toml --crate sse_engine_ffi --output ../include/sse_engine.h

## Fail when the committed header differs from what cbindgen generates.
header-check:
	@tmp=$$(mktemp) && cd ffi-c && cbindgen --quiet --config cbindgen.toml --crate sse_engine_ffi --output $$tmp \
	  && diff -u ../include/sse_engine.h $$tmp && rm -f $$tmp && echo "header: include/sse_engine.h is up to date"

test-rust:
	$(CARGO) test --workspace
	$(CARGO) test -p sse_engine --features fault-injection --test fault
	$(CARGO) test -p sse_engine --features cluster --lib --test cluster

test-c:
	bash tests/c/run.sh

test-node:
	bash bindings-node/run-tests.sh

test-python:
	bash bindings-python/run-tests.sh

## The benchmark report renderer's unit tests (the suite itself runs in bench-smoke).
test-bench:
	python3 -m unittest bench/test_report.py

## The benchmark suite against the peers (every scenario, under 20 minutes): writes
## docs/benchmarks/results.md, results.json and the SVG charts. BENCH_ARGS are passed on
## (e.g. BENCH_ARGS="--scenarios burst-10k-64 --hosts engine,nchan").
bench: setup
	python3 bench/suite.py $(BENCH_ARGS)

## The same suite at small sizes, one run each (under 2 minutes; CI runs it).
bench-smoke: setup
	python3 bench/suite.py --smoke $(BENCH_ARGS)

## The fan-out burst alone, engine against the naive reference (10,000 clients x 20 x 64 B).
bench-fanout: setup
	$(CARGO) run --release --quiet -p sse_bench --bin sse-loadgen -- $(BENCH_ARGS)

## Reconnect storm: replay throughput and live latency with and without the storm.
bench-storm: setup
	$(CARGO) run --release --quiet -p sse_bench --bin sse-loadgen -- storm $(BENCH_ARGS)

## Many one-member channels against one big one (5,000 clients): a broadcast per channel,
## one broadcast_many of them all, and one broadcast to everyone.
bench-channels: setup
	$(CARGO) run --release --quiet -p sse_bench --bin sse-loadgen -- channels $(BENCH_ARGS)

## Cluster mode: publish throughput through one Redis (its own redis-server), 1 and 100
## channels, with latency and Redis commands per event.
bench-cluster: setup
	$(CARGO) run --release --quiet -p sse_bench --features cluster --bin sse-cluster -- $(BENCH_ARGS)

## One thread publishing as fast as it can while clients read: what the other channels,
## the registry and the process's memory see meanwhile.
bench-flood: setup
	$(CARGO) run --release --quiet -p sse_bench --bin sse-flood -- $(BENCH_ARGS)

## The C library (release) and a pkg-config file for the build tree in build/pkgconfig.
lib:
	$(CARGO) build --release -p sse_engine_ffi

pc: lib
	@mkdir -p build/pkgconfig
	@sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@LIBDIR@|$(CURDIR)/target/release|' \
	     -e 's|@INCLUDEDIR@|$(CURDIR)/include|' -e 's|@VERSION@|$(VERSION)|' \
	     ffi-c/sse_engine.pc.in > build/pkgconfig/sse_engine.pc
	@echo "PKG_CONFIG_PATH=$(CURDIR)/build/pkgconfig"

## Install libsse_engine, the header and sse_engine.pc under $(PREFIX).
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 target/release/libsse_engine.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 target/release/libsse_engine.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/sse_engine.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PREFIX)/lib|' \
	    -e 's|@INCLUDEDIR@|$(PREFIX)/include|' -e 's|@VERSION@|$(VERSION)|' \
	    ffi-c/sse_engine.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/sse_engine.pc

clean:
	$(CARGO) clean
	rm -rf build
