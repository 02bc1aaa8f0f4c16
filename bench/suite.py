#!/usr/bin/env python3
"""The benchmark suite: sse-engine against the peers, on one machine, in one run.

    python3 bench/suite.py [--smoke] [--out DIR] [--scenarios a,b] [--hosts a,b]

Prepares what the hosts need (the load generator, the Node addon and packages, the Python
virtualenv, nginx + nchan from Debian), runs every scenario against every host with the
one load generator (`sse-loadgen`, each host in a process of its own, one host at a time),
writes `results.json` and renders `results.md` with SVG charts (bench/report.py).

A peer that cannot be installed or started is reported in the results as such; a host
that fails a scenario gets the error in that scenario's table. The suite exits non-zero
when a host of our own (the engine hosts, the references) fails, so CI catches rot.

Without --out the full suite writes docs/benchmarks/; --smoke (small sizes, one run)
writes to a temporary directory unless --out is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bindings-node"
VENV = Path(os.environ.get("SSE_PY_VENV", ROOT / "bindings-python" / ".venv"))
PY = VENV / "bin" / "python"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LOADGEN = TARGET / "release" / "sse-loadgen"

# name, label, group, command (None: built into the load generator), what it is
HOSTS = [
    ("engine", "sse-engine (Rust host)", "engine", None,
     "the engine behind a minimal Rust HTTP host: `connect_fd`, `broadcast`"),
    ("node-engine", "sse-engine from Express", "engine", ["node", "bench/node/express-engine.js"],
     "Express 5 hands the socket over (`sse-engine/express`), `engine.broadcast()`"),
    ("py-engine", "sse-engine from Python", "engine", [str(PY), "bench/python/engine_host.py"],
     "`http.server` hands the socket over, `engine.broadcast()`"),
    ("floor", "coalesced floor", "reference", None,
     "reference: one thread, every event of a burst in one blocking `send()` per client"),
    ("naive", "naive loop", "reference", None,
     "reference: one thread, one blocking `send()` per event per client"),
    ("node-write", "Node res.write loop", "peer", ["node", "bench/node/plain-write.js"],
     "plain `node:http`, `res.write(frame)` for every response"),
    ("better-sse", "better-sse", "peer", ["node", "bench/node/better-sse.js"],
     "better-sse channel, `channel.broadcast()`"),
    ("fastify-sse", "@fastify/sse", "peer", ["node", "bench/node/fastify-sse.js"],
     "Fastify 5 + @fastify/sse, `reply.sse.send()` to every reply"),
    ("sse-starlette", "sse-starlette", "peer", [str(PY), "bench/python/sse_starlette_host.py"],
     "sse-starlette on uvicorn, one `asyncio.Queue` per client"),
    ("nchan", "nchan (nginx)", "peer", ["python3", "bench/nchan/nchan_host.py"],
     "nginx + nchan, one process; events through its HTTP publisher"),
]
REFERENCES = {"floor", "naive"}


def scenarios(smoke: bool) -> list[dict]:
    """Every scenario with its load-generator arguments."""
    if smoke:
        # One small run of each kind of scenario: the paced one with stalled clients
        # covers the paced code too.
        return [
            dict(id="burst-1k-64", kind="burst", clients=200, events=5, size=64, runs=1),
            dict(id="slow", kind="paced", clients=200, rate=50, seconds=1, size=1024, runs=1,
                 stalled_percent=10, hosts_except=REFERENCES),
            dict(id="storm", kind="storm", live=50, storm=50, rate=50, seconds=1.5),
        ]
    return [
        dict(id="burst-1k-64", kind="burst", clients=1000, events=20, size=64, runs=3),
        dict(id="burst-1k-1k", kind="burst", clients=1000, events=20, size=1024, runs=3),
        dict(id="burst-10k-64", kind="burst", clients=10000, events=20, size=64, runs=3),
        dict(id="burst-10k-1k", kind="burst", clients=10000, events=20, size=1024, runs=3),
        dict(id="paced-10k", kind="paced", clients=10000, rate=100, seconds=10, size=64, runs=3,
             stalled_percent=0, hosts_except=REFERENCES),
        dict(id="paced-1k", kind="paced", clients=1000, rate=1000, seconds=5, size=64, runs=3,
             stalled_percent=0, hosts_except=REFERENCES),
        dict(id="slow", kind="paced", clients=1000, rate=50, seconds=5, size=1024, runs=3,
             stalled_percent=10, hosts_except=REFERENCES),
        dict(id="storm", kind="storm", live=1000, storm=1000, rate=100, seconds=10),
    ]


def log(message: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, text=True, **kw)


def output(cmd: list[str]) -> str:
    try:
        return run(cmd, capture_output=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------- preparation

def prepare_loadgen() -> None:
    log("building the load generator (release)")
    run(["cargo", "build", "--release", "--quiet", "-p", "sse_bench"], check=True)


def prepare_node() -> str | None:
    """npm packages and the release addon; returns why Node hosts can't run, or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are not installed"
    npm = ["npm", "--prefix", str(NODE_DIR), "--no-fund", "--no-audit", "--loglevel=error"]
    # `npm install` with the committed lock, as bindings-node/run-tests.sh does (it
    # explains why not `npm ci`).
    log("installing the Node packages (npm install)")
    if run(npm + ["install"]).returncode != 0:
        return "npm install failed in bindings-node"
    log("building the Node addon (release)")
    if run(npm + ["run", "build"], stdout=subprocess.DEVNULL).returncode != 0:
        return "the Node addon did not build"
    return None


def prepare_python(rebuild: bool) -> str | None:
    """The virtualenv with the binding and the peers; returns why not, or None. Without
    `rebuild`, a virtualenv that already imports the binding and sse-starlette is used
    as it is (the smoke run after `make test`, which has just built it)."""
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    if not rebuild and PY.exists() and run(
            [str(PY), "-c", "import sse_engine, sse_starlette, uvicorn"],
            stderr=subprocess.DEVNULL).returncode == 0:
        return None
    if not PY.exists():
        log(f"creating the virtualenv {VENV}")
        if run([sys.executable, "-m", "venv", str(VENV)]).returncode != 0:
            return "python3 -m venv failed"
    log("installing the Python packages and building the binding (release)")
    if run(pip + ["install", "-r", "bindings-python/requirements-test.txt"]).returncode != 0:
        return "pip install of the pinned requirements failed"
    env = dict(os.environ, PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    if run(pip + ["install", "--no-build-isolation", "--force-reinstall", "--no-deps",
                  "./bindings-python"], env=env).returncode != 0:
        return "the Python binding did not build"
    return None


def prepare_nchan() -> str | None:
    """nginx-light + libnginx-mod-nchan from Debian; returns why not, or None."""
    module = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
    if shutil.which("nginx") and module.exists():
        return None
    if not shutil.which("apt-get"):
        return "not installed, and apt-get is not available"
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    log("installing nginx-light and libnginx-mod-nchan (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(sudo + ["apt-get", "update", "-qq"], env=env)
    done = run(sudo + ["apt-get", "install", "-y", "-qq", "nginx-light", "libnginx-mod-nchan"],
               env=env, capture_output=True)
    # The package may start a system nginx on port 80; the host runs its own.
    run(sudo + ["sh", "-c", "service nginx stop >/dev/null 2>&1 || nginx -s quit >/dev/null 2>&1 || true"])
    if done.returncode != 0 or not shutil.which("nginx") or not module.exists():
        return "apt-get install nginx-light libnginx-mod-nchan failed: " + done.stderr.strip()[-300:]
    return None


def versions() -> dict:
    def npm_version(package: str) -> str:
        try:
            path = NODE_DIR / "node_modules" / package / "package.json"
            return json.loads(path.read_text())["version"]
        except (OSError, ValueError, KeyError):
            return "not installed"

    def pip_version(package: str) -> str:
        if not PY.exists():
            return "not installed"
        return output([str(PY), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"]) or "not installed"

    def dpkg_version(package: str) -> str:
        return output(["dpkg-query", "-W", "-f=${Version}", package]) or "not installed"

    commit = output(["git", "rev-parse", "--short", "HEAD"])
    engine_version = re.search(r'^version = "(.*)"', (ROOT / "Cargo.toml").read_text(), re.M)
    return {
        "sse-engine": f"{engine_version.group(1) if engine_version else '?'} ({commit or 'no git'})",
        "rustc": output(["rustc", "--version"]),
        "node": output(["node", "--version"]),
        "express": npm_version("express"),
        "fastify": npm_version("fastify"),
        "@fastify/sse": npm_version("@fastify/sse"),
        "better-sse": npm_version("better-sse"),
        "python": output([str(PY), "-c", "import platform; print(platform.python_version())"]),
        "sse-starlette": pip_version("sse-starlette"),
        "starlette": pip_version("starlette"),
        "uvicorn": pip_version("uvicorn"),
        "nginx-light": dpkg_version("nginx-light"),
        "libnginx-mod-nchan": dpkg_version("libnginx-mod-nchan"),
    }


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        mem_kib = 0
    os_name = "unknown"
    try:
        os_name = re.search(r'PRETTY_NAME="(.*)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_name,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


# ---------------------------------------------------------------- scenarios

def loadgen_args(scenario: dict, host: str, command: list[str] | None) -> list[str]:
    kind = scenario["kind"]
    args = [str(LOADGEN)]
    if kind == "burst":
        args += ["burst", "--clients", str(scenario["clients"]), "--events", str(scenario["events"]),
                 "--size", str(scenario["size"]), "--runs", str(scenario["runs"])]
    elif kind == "paced":
        args += ["pace", "--clients", str(scenario["clients"]), "--rate", str(scenario["rate"]),
                 "--seconds", str(scenario["seconds"]), "--size", str(scenario["size"]),
                 "--runs", str(scenario["runs"]), "--stalled-percent", str(scenario["stalled_percent"]),
                 "--grace", "5"]
    else:
        args += ["storm", "--live", str(scenario["live"]), "--storm", str(scenario["storm"]),
                 "--rate", str(scenario["rate"]), "--seconds", str(scenario["seconds"])]
        return args + ["--json"]
    args += ["--hosts", host, "--json"]
    if command:
        args += ["--host-cmd", f"{host}={' '.join(command)}"]
    return args


def run_loadgen(args: list[str], log_file) -> dict:
    """Runs one load-generator invocation; its last JSON line, or {"error": …}."""
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    last_json, tail = None, []
    for line in proc.stdout:
        log_file.write(line)
        log_file.flush()
        if line.startswith("{"):
            last_json = line
        else:
            tail = (tail + [line.rstrip()])[-6:]
            if line.startswith("["):
                print("    " + line.rstrip()[:160], flush=True)
    code = proc.wait()
    seconds = round(time.monotonic() - started, 1)
    if code != 0 or last_json is None:
        errors = [t for t in tail if "error" in t.lower()] or tail
        return {"error": (errors[-1] if errors else f"exit {code}")[:400], "wall_seconds": seconds}
    result = json.loads(last_json)
    result["wall_seconds"] = seconds
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, one run (CI)")
    parser.add_argument("--out", help="output directory (default docs/benchmarks, or a temp dir with --smoke)")
    parser.add_argument("--scenarios", help="comma-separated scenario ids to run")
    parser.add_argument("--hosts", help="comma-separated host names to run")
    parser.add_argument("--no-prepare", action="store_true", help="skip builds and installs")
    opts = parser.parse_args()

    out = Path(opts.out) if opts.out else (
        Path(tempfile.mkdtemp(prefix="sse-bench-smoke-")) if opts.smoke else ROOT / "docs" / "benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    chosen = scenarios(opts.smoke)
    if opts.scenarios:
        wanted = opts.scenarios.split(",")
        unknown = set(wanted) - {s["id"] for s in chosen}
        if unknown:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {[s['id'] for s in chosen]}")
        chosen = [s for s in chosen if s["id"] in wanted]
    hosts = HOSTS
    if opts.hosts:
        wanted = opts.hosts.split(",")
        unknown = set(wanted) - {h[0] for h in HOSTS}
        if unknown:
            parser.error(f"unknown host(s) {sorted(unknown)}; known: {[h[0] for h in HOSTS]}")
        hosts = [h for h in HOSTS if h[0] in wanted]

    started = time.time()
    unavailable: dict[str, str] = {}
    if not opts.no_prepare:
        prepare_loadgen()
        names = {h[0] for h in hosts}
        if names & {"node-engine", "node-write", "better-sse", "fastify-sse"}:
            reason = prepare_node()
            if reason:
                for name in ("node-engine", "node-write", "better-sse", "fastify-sse"):
                    unavailable[name] = reason
        if names & {"py-engine", "sse-starlette"}:
            reason = prepare_python(rebuild=not opts.smoke)
            if reason:
                unavailable["py-engine"] = unavailable["sse-starlette"] = reason
        if "nchan" in names:
            reason = prepare_nchan()
            if reason:
                unavailable["nchan"] = reason
    for name, reason in unavailable.items():
        log(f"{name}: unavailable: {reason}")

    results = {
        "suite": "sse-engine benchmarks",
        "mode": "smoke" if opts.smoke else "full",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "hosts": [
            {"name": name, "label": label, "group": group, "about": about,
             "available": name not in unavailable, "unavailable_reason": unavailable.get(name)}
            for name, label, group, _, about in hosts
        ],
        "scenarios": [],
    }
    failed_own = []
    with open(out / "loadgen.log", "w") as log_file:
        for scenario in chosen:
            entry = {k: v for k, v in scenario.items() if k != "hosts_except"}
            entry["results"] = {}
            results["scenarios"].append(entry)
            if scenario["kind"] == "storm":
                if "engine" not in {h[0] for h in hosts}:
                    continue
                log(f"{scenario['id']}: engine")
                entry["results"]["engine"] = result = run_loadgen(loadgen_args(scenario, "engine", None), log_file)
                if "error" in result:
                    failed_own.append(f"{scenario['id']}/engine: {result['error']}")
                continue
            for name, _, group, command, _ in hosts:
                if name in scenario.get("hosts_except", ()):
                    continue
                if name in unavailable:
                    entry["results"][name] = {"error": f"unavailable: {unavailable[name]}"}
                    continue
                log(f"{scenario['id']}: {name}")
                result = run_loadgen(loadgen_args(scenario, name, command), log_file)
                entry["results"][name] = result
                if "error" in result:
                    log(f"{scenario['id']}: {name} failed: {result['error']}")
                    if group != "peer":
                        failed_own.append(f"{scenario['id']}/{name}: {result['error']}")
            (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    results["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results["duration_seconds"] = round(time.time() - started)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    log(f"results: {out / 'results.json'} ({results['duration_seconds']} s)")

    report = run([sys.executable, "bench/report.py", str(out / "results.json"), "--out", str(out)])
    if report.returncode != 0:
        log("the report did not render")
        return 1
    for failure in failed_own:
        log(f"FAILED: {failure}")
    return 1 if failed_own else 0


if __name__ == "__main__":
    sys.exit(main())
