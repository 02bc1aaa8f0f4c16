#!/usr/bin/env bash
# Python binding tests, from a fresh checkout: creates a virtualenv, installs the pinned
# test dependencies from PyPI, builds and installs the package from source
# (`pip install ./bindings-python`: maturin compiles the Rust crate), then runs pytest.
# Its last line is pytest's summary. Needs: python3 (>= 3.9, with venv), cargo, a C
# linker; network access to PyPI and crates.io.
#
#   bash bindings-python/run-tests.sh [pytest args...]
#
# SSE_PY_VENV: the virtualenv to use or create (default: bindings-python/.venv).
# CARGO_TARGET_DIR is honoured (default: the workspace's target/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${SSE_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
export PATH="$HOME/.cargo/bin:$PATH"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
export PATH="$venv/bin:$PATH"  # maturin, gunicorn, uvicorn, hypercorn
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install -r "$here/requirements-test.txt"
# maturin comes from the requirements: build without an isolated build environment.
"${pip[@]}" install --no-build-isolation --force-reinstall --no-deps "$here"

# A second copy with the test-only cargo feature fault-injection, outside the venv, for
# tests/test_fault.py (the installed package never has it).
fault_dir="$(mktemp -d "${TMPDIR:-/tmp}/sse-py-fault.XXXXXX")"
trap 'rm -rf "$fault_dir"' EXIT
(cd "$here" && "$venv/bin/maturin" build --quiet --features fault-injection --out "$fault_dir/wheel")
"${pip[@]}" install --no-deps --target "$fault_dir/site" "$fault_dir"/wheel/*.whl
export SSE_FAULT_PYTHONPATH="$fault_dir/site"

cd "$here"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
