"""Tests of bench/report.py: python3 -m unittest bench/test_report.py"""

from __future__ import annotations

import copy
import io
import json
import sys
import tempfile
import unittest
import xml.dom.minidom
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402

HOSTS = [
    ("engine", "sse-engine (Rust host)", "engine"),
    ("node-engine", "sse-engine from Express", "engine"),
    ("py-engine", "sse-engine from Python", "engine"),
    ("floor", "coalesced floor", "reference"),
    ("naive", "naive loop", "reference"),
    ("node-write", "Node res.write loop", "peer"),
    ("sse-starlette", "sse-starlette", "peer"),
    ("nchan", "nchan (nginx)", "peer"),
]


def spread(value, lo=None, hi=None):
    return {"median": value, "min": value if lo is None else lo, "max": value if hi is None else hi}


def burst(rate, rss=800.0, connects=5000):
    return {"bench": "sse_fanout", "clients": 10000, "events": 20, "size": 64, "runs": 3,
            "hosts": [{"kind": "x", "deliveries_per_s": spread(rate, rate * 0.9, rate * 1.1),
                       "p50_ns": 40e6, "p99_ns": 80e6, "max_ns": 90e6,
                       "since_start_p50_ns": 41e6, "since_start_p99_ns": 81e6,
                       "rss_per_idle_conn_bytes": rss, "rss_per_conn_after_runs_bytes": rss,
                       "connect_seconds": 2.0, "connects_per_s": connects, "stats": "", "runs": [{}] * 3}],
            "ratio_engine_over_naive": None, "wall_seconds": 10.0}


def paced_phase(p99_ms, stalled=0, keeps_up=True, runs=3, rss_after=10_000_000, note=None):
    if runs == 0:
        return {"stalled_clients": stalled, "keeps_up": False, "note": note, "rss_after_bytes": rss_after,
                "deliveries_per_s": None, "p50_ns": None, "p99_ns": None, "max_ns": None,
                "stamp_p99_ns": None, "lag_ns": None, "host_cpu_seconds": None, "runs": []}
    return {"stalled_clients": stalled, "keeps_up": keeps_up, "rss_after_bytes": rss_after,
            "note": note if note or keeps_up else f"stopped after run {runs}: the host fell behind",
            "deliveries_per_s": spread(990_000.0), "p50_ns": spread(p99_ms * 0.3e6),
            "p99_ns": spread(p99_ms * 1e6, p99_ms * 0.9e6, p99_ms * 1.2e6), "max_ns": spread(p99_ms * 1.1e6),
            "stamp_p99_ns": spread(p99_ms * 0.8e6), "lag_ns": spread(2e6), "host_cpu_seconds": spread(3.0),
            "runs": [{}] * runs}


def paced(*phases, rss=700.0):
    return {"bench": "sse_paced", "clients": 10000, "rate": 100, "seconds": 10, "events": 1000, "size": 64,
            "runs": 3, "stalled_percent": 0, "keep_up_seconds": 1,
            "hosts": [{"kind": "x", "rss_per_idle_conn_bytes": rss, "rss_idle_bytes": 1, "connects_per_s": 4000,
                       "stats": "", "phases": list(phases)}], "wall_seconds": 40.0}


def storm():
    window = {"p50_ns": 600_000, "p99_ns": 2_500_000, "replayed_per_s": 40_000, "host_events_replayed": 400_000,
              "window_seconds": 10.0, "live_lost": 0, "live_duplicates": 0, "live_gap_events": 0, "host_gaps": 0}
    storm_window = dict(window, p99_ns=4_000_000, storm={"replayed_client_side": 399_000, "lost": 0,
                                                         "duplicates": 0, "gap_events": 0,
                                                         "catch_up_p50_ns": 200_000, "catch_up_p99_ns": 4_000_000})
    return {"bench": "sse_reconnect_storm", "reconnects_per_s": 600.0, "p99_ratio": 1.6, "ok": True,
            "baseline": dict(window, storm=None), "storm_window": storm_window, "wall_seconds": 30.0}


def full_results() -> dict:
    bursts = {"engine": burst(2_000_000, rss=600), "node-engine": burst(800_000, rss=15_000),
              "py-engine": burst(850_000, rss=1_500), "floor": burst(2_100_000, rss=0.0),
              "naive": burst(110_000, rss=0.0), "node-write": burst(90_000, rss=14_000),
              "sse-starlette": burst(16_000, rss=38_000),
              "nchan": {"error": "unavailable: apt-get install failed"}}
    pace = {"engine": paced(paced_phase(9.0)), "node-engine": paced(paced_phase(24.0), rss=15_000),
            "py-engine": paced(paced_phase(30.0), rss=1_600), "node-write": paced(paced_phase(90.0)),
            "sse-starlette": paced(paced_phase(50_000.0, keeps_up=False, runs=1)),
            "nchan": {"error": "unavailable: apt-get install failed"}}
    slow = {"engine": paced(paced_phase(8.0), paced_phase(8.4, stalled=200, rss_after=10_200_000)),
            "node-engine": paced(paced_phase(20.0), paced_phase(30.0, stalled=200)),
            "py-engine": paced(paced_phase(40.0, keeps_up=False, runs=2),
                               paced_phase(0, stalled=200, runs=0,
                                           note="not run: the host did not keep up with 0 stalled clients")),
            "node-write": {"error": "host node-write exited with status 1", "wall_seconds": 3.5}}

    def scenario(sid, kind, results, **params):
        return dict(id=sid, kind=kind, results=copy.deepcopy(results), **params)

    return {
        "suite": "sse-engine benchmarks", "mode": "full", "started": "2026-11-23T15:59:11+00:00",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5, "kernel": "6.1", "os": "Debian 12",
                    "nofile_limit": 20000},
        "versions": {"sse-engine": "0.1.0 (abc)", "node": "v20"},
        "hosts": [{"name": n, "label": label, "group": g, "about": f"about {n}", "available": n != "nchan",
                   "unavailable_reason": "apt-get install failed" if n == "nchan" else None}
                  for n, label, g in HOSTS],
        "scenarios": [
            scenario("burst-1k-64", "burst", bursts, clients=1000, events=20, size=64, runs=3),
            scenario("burst-10k-64", "burst", bursts, clients=10000, events=20, size=64, runs=3),
            scenario("paced-10k", "paced", pace, clients=10000, rate=100, seconds=10, size=64, runs=3,
                     stalled_percent=0),
            scenario("slow", "paced", slow, clients=2000, rate=100, seconds=5, size=1024, runs=3,
                     stalled_percent=10),
            scenario("storm", "storm", {"engine": storm()}, live=1000, storm=1000, rate=100, seconds=10),
        ],
        "finished": "2026-11-23T16:17:00+00:00", "duration_seconds": 1069,
    }


class Rendered(unittest.TestCase):
    def render(self, data) -> dict[str, str]:
        with tempfile.TemporaryDirectory() as out:
            report.render(data, Path(out))
            files = {p.name: p.read_text(encoding="utf-8") for p in Path(out).iterdir()}
        for name, text in files.items():
            if name.endswith(".svg"):
                xml.dom.minidom.parseString(text.encode())  # well-formed
                self.assertNotIn("href=\"http", text)
        return files

    def target(self, page: str, start: str, count: int = 1) -> str:
        """The table row starting with `start` (which appears `count` times)."""
        lines = [line for line in page.splitlines() if line.startswith(f"| {start}")]
        self.assertEqual(len(lines), count, start)
        return lines[0]


class FullRun(Rendered):
    def setUp(self):
        self.files = self.render(full_results())
        self.page = self.files["results.md"]

    def test_files_and_relative_links(self):
        for name in ("fanout-10k.svg", "latency.svg", "memory.svg", "burst.svg", "results.md"):
            self.assertIn(name, self.files)
        self.assertIn("](fanout-10k.svg)", self.page)
        self.assertIn("](latency.svg)", self.page)
        self.assertIn("](memory.svg)", self.page)
        self.assertIn("2026-11-23 15:59 UTC", self.page)
        self.assertIn("17 min 49 s", self.page)

    def test_targets(self):
        self.assertIn("not measured", self.target(self.page, "burst-10k-64: engine ≥ 15× nchan"))
        row = self.target(self.page, "burst-10k-64: engine ≥ 15× Node res.write loop")
        self.assertIn("22.2×", row)
        self.assertIn("| met", row)
        self.assertIn("125×", self.target(self.page, "burst-10k-64: engine ≥ 50× sse-starlette"))
        floor = self.target(self.page, "burst-10k-64: engine ≥ 0.6× coalesced floor")
        self.assertIn("0.95×", floor)
        self.assertIn("| met", floor)
        paced = self.target(self.page, "paced-10k: engine p99")
        self.assertIn("9.0 ms", paced)
        self.assertIn("fell behind: sse-starlette", paced)
        self.assertIn("not measured", self.target(self.page, "paced-1k: engine p99"))
        self.assertIn("| met", self.target(self.page, "idle memory ≤ 1 KiB per connection: sse-engine (Rust"))
        self.assertIn("**not met**", self.target(self.page, "idle memory ≤ 1 KiB per connection: sse-engine from E"))
        self.assertIn("+5 %", self.target(self.page, "stalled clients raise the others' p99 by < 20 %: sse-engine (R"))
        self.assertIn("+50 %", self.target(self.page, "stalled clients raise the others' p99 by < 20 %: sse-engine from E"))
        self.assertIn("not measured", self.target(self.page, "stalled clients raise the others' p99 by < 20 %: sse-engine from P"))

    def test_failures_are_listed_not_dropped(self):
        self.assertIn("unavailable: apt-get install failed", self.files["fanout-10k.svg"])
        self.assertIn("nchan (nginx)", self.files["fanout-10k.svg"])
        self.assertIn("| Node res.write loop | failed after 3.5 s: host node-write exited with status 1", self.page)
        self.assertIn("- nchan (nginx) (`nchan`): apt-get install failed", self.page)

    def test_fell_behind(self):
        self.assertIn("fell behind (1 run)", self.files["latency.svg"])
        self.assertIn("**no**: fell behind in run 1 (figures from that run)", self.page)
        self.assertIn("50.0 s", self.page)  # ≥ 10 s in seconds

    def test_slow_and_storm(self):
        row = self.target(self.page, "sse-engine (Rust host) | 8.0")
        self.assertIn("+5 %", row)
        self.assertIn("1,000 B", row)  # (10.2 MB − 10 MB) / 200 stalled clients
        self.assertIn("not run: the host did not keep up", self.page)
        self.assertIn("| reconnects/s (while publishing) | 600 |", self.page)
        self.assertIn("| check | passed |", self.page)

    def test_burst_table(self):
        row = self.target(self.page, "sse-starlette | 16,000 (14,400–17,600)", count=2)  # two bursts
        self.assertIn("125×", row)
        self.assertIn("41.0 / 81.0", row)
        self.assertIn("37.1 KiB", row)


class PartialRuns(Rendered):
    def test_empty_file(self):
        files = self.render({})
        self.assertIn("not measured", files["results.md"])
        self.assertIn("fanout-10k.svg", files)

    def test_only_one_scenario_and_unfinished(self):
        data = full_results()
        data["scenarios"] = [s for s in data["scenarios"] if s["id"] == "slow"]
        del data["duration_seconds"]
        files = self.render(data)
        self.assertIn("**unfinished**", files["results.md"])
        self.assertIn("not measured (scenario not run)", files["results.md"])
        self.assertIn("no burst scenario", files["fanout-10k.svg"])

    def test_engine_failed_everywhere(self):
        data = full_results()
        for scenario in data["scenarios"]:
            if "engine" in scenario["results"]:
                scenario["results"]["engine"] = {"error": "host engine exited with status 101", "wall_seconds": 1}
        files = self.render(data)
        self.assertIn("failed after 1 s: host engine exited", files["fanout-10k.svg"])
        self.assertIn("Engine: failed after 1 s", files["results.md"])

    def test_odd_values_do_not_crash(self):
        data = full_results()
        data["scenarios"][1]["results"]["engine"]["hosts"][0]["deliveries_per_s"] = "fast"
        data["scenarios"][2]["results"]["engine"]["hosts"] = []
        data["scenarios"][3]["results"]["engine"] = ["not", "a", "dict"]
        data["scenarios"][4]["results"]["engine"]["baseline"] = None
        data["hosts"].append({"name": "odd <&> host", "label": "odd <&> \"host\""})
        data["scenarios"][1]["results"]["odd <&> host"] = {"error": "bad <xml> & \"quotes\""}
        files = self.render(data)
        self.assertIn("odd &lt;&amp;&gt; \"host\"", files["fanout-10k.svg"])


class Formatting(unittest.TestCase):
    def test_numbers(self):
        self.assertEqual(report.fmt_int(1234567.4), "1,234,567")
        self.assertEqual(report.fmt_int(None), "–")
        self.assertEqual(report.fmt_ms(9_263_893), "9.3")
        self.assertEqual(report.fmt_ms(12_345_600_000), "12.3 s")
        self.assertEqual(report.fmt_ms(2_448_812_000), "2,448.8")
        self.assertEqual(report.fmt_bytes(1003.5), "1,004 B")
        self.assertEqual(report.fmt_bytes(1105.9), "1.08 KiB")
        self.assertEqual(report.fmt_bytes(48824.3), "47.7 KiB")
        self.assertEqual(report.fmt_ratio(138.2), "138×")
        self.assertEqual(report.fmt_ratio(0.95), "0.95×")
        self.assertEqual(report.fmt_spread(spread(3.0, 2.0, 4.0), report.fmt_int), "3 (2–4)")
        self.assertEqual(report.fmt_spread(spread(3.0), report.fmt_int), "3")
        self.assertEqual(report.md("a|b\nc"), "a\\|b c")

    def test_axes(self):
        axis = report.log_axis([1.9e6, 55e9], report.fmt_duration_tick, "t")
        self.assertEqual(axis.ticks[0][1], "0.1 ms")
        self.assertEqual(axis.ticks[-1][1], "100 s")
        axis = report.linear_axis([2_288_623], report.fmt_compact, "d")
        self.assertEqual([label for _, label in axis.ticks], ["0", "500k", "1M", "1.5M", "2M", "2.5M"])


class CommandLine(unittest.TestCase):
    def test_main(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "results.json"
            path.write_text(json.dumps(full_results()))
            with redirect_stdout(io.StringIO()):
                self.assertEqual(report.main([str(path), "--out", str(Path(tmp) / "out")]), 0)
            self.assertTrue((Path(tmp) / "out" / "results.md").exists())
            with redirect_stderr(io.StringIO()):
                self.assertEqual(report.main([str(Path(tmp) / "missing.json"), "--out", tmp]), 1)


if __name__ == "__main__":
    unittest.main()
