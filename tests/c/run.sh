#!/usr/bin/env bash
# Builds libsse_engine (debug), compiles every tests/c/test_*.c against it with
# -Wall -Wextra -Werror and AddressSanitizer + UndefinedBehaviorSanitizer, runs each, and
# prints "c-tests: N passed, M failed". Exit status 1 if any test failed to build or run.
#
# Needs only: cargo, cc (gcc or clang), pkg-config, curl.
#   tests/c/run.sh                 # all tests
#   tests/c/run.sh test_bad_input  # only the named ones
# CC overrides the compiler (default cc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))"
cc="${CC:-cc}"

for tool in cargo "$cc" pkg-config curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: '$tool' is required but not installed" >&2
        exit 1
    fi
done

echo "== cargo build -p sse_engine_ffi (debug)"
(cd "$repo" && cargo build -p sse_engine_ffi)

# Where cargo put the library (respects CARGO_TARGET_DIR).
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
libdir="$target_dir/debug"
if [[ ! -e "$libdir/libsse_engine.so" ]]; then
    echo "run.sh: $libdir/libsse_engine.so was not built" >&2
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sse-c-tests.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The shipped pkg-config template, filled in for the build tree: how a C host finds the library.
mkdir -p "$work/pkgconfig"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)"
sed -e "s|@PREFIX@|$repo|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$repo/include|" \
    -e "s|@VERSION@|$version|" "$repo/ffi-c/sse_engine.pc.in" >"$work/pkgconfig/sse_engine.pc"
export PKG_CONFIG_PATH="$work/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc="$(pkg-config --cflags --libs sse_engine)"
read -r -a pc_flags <<<"$pc"
echo "== pkg-config --cflags --libs sse_engine: $pc"

if [[ $# -gt 0 ]]; then
    tests=()
    for name in "$@"; do tests+=("$here/${name%.c}.c"); done
else
    tests=("$here"/test_*.c "$here"/fault/test_*.c)
fi

# Tests under fault/ link a library built with the test-only cargo feature
# fault-injection, in a target directory of its own (the shipped build never has it).
fault_libdir="$target_dir/fault-injection/debug"
for src in "${tests[@]}"; do
    if [[ "$src" == "$here/fault/"* ]]; then
        echo "== cargo build -p sse_engine_ffi --features fault-injection (debug)"
        (cd "$repo" && cargo build -p sse_engine_ffi --features fault-injection \
            --target-dir "$target_dir/fault-injection")
        break
    fi
done

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

passed=0
failed=0
failed_names=()
for src in "${tests[@]}"; do
    name="$(basename "$src" .c)"
    exe="$work/$name"
    echo "== $name"
    link=("${pc_flags[@]}" -Wl,-rpath,"$libdir")
    if [[ "$src" == "$here/fault/"* ]]; then
        link=(-I"$repo/include" -L"$fault_libdir" -lsse_engine -Wl,-rpath,"$fault_libdir")
    fi
    # The sources come first and the libraries after them, so the link also works with
    # linkers that resolve in command-line order.
    if ! "$cc" -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined \
        -fno-omit-frame-pointer -g -o "$exe" "$src" "${link[@]}"; then
        echo "== $name: FAILED to compile"
        failed=$((failed + 1))
        failed_names+=("$name")
        continue
    fi
    if (cd "$work" && timeout 300 "$exe"); then
        echo "== $name: passed"
        passed=$((passed + 1))
    else
        echo "== $name: FAILED (exit status $?)"
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
done

if [[ $failed -gt 0 ]]; then
    echo "failed: ${failed_names[*]}"
fi
echo "c-tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
