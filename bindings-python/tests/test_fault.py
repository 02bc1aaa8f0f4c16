"""Injected panics (the engine's test-only cargo feature fault-injection): run-tests.sh
builds a second copy of the package with it into SSE_FAULT_PYTHONPATH; the host script
runs in a child interpreter that imports that copy."""

import os
import subprocess
import sys
from pathlib import Path


def test_injected_panics_surface_as_exceptions_and_a_dead_reactor_fails_closed():
    fault_path = os.environ.get("SSE_FAULT_PYTHONPATH")
    assert fault_path, "run the tests with run-tests.sh: it builds the fault-injection copy"
    host = Path(__file__).with_name("fault_host.py")
    env = dict(os.environ, PYTHONPATH=fault_path)
    done = subprocess.run([sys.executable, str(host)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fault host: ok" in done.stdout
