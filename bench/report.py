#!/usr/bin/env python3
"""Renders the benchmark suite's results as a Markdown page with SVG charts.

    python3 bench/report.py RESULTS_JSON --out DIR

Reads the `results.json` written by bench/suite.py and writes into DIR `results.md` and
the charts it links (relative links, so the page works wherever it is committed):
`fanout-10k.svg` (the headline), `burst.svg`, `latency.svg`, `latency-1k.svg` and
`memory.svg`. Python standard library only; the SVG is written by hand.

Partial results are fine: a missing scenario or host is reported as "not measured" or
"not run", and a host entry `{"error": …}` as a row saying it failed (or was unavailable).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

# The scenarios the headline, the targets and the memory figures are computed from.
HEADLINE = "burst-10k-64"
BURSTS = ["burst-1k-64", "burst-1k-1k", "burst-10k-64", "burst-10k-1k"]
PACED = ["paced-10k", "paced-1k"]
TEN_K = ["burst-10k-64", "burst-10k-1k", "paced-10k"]
ENGINE = "engine"
ENGINE_HOSTS = ["engine", "node-engine", "py-engine"]
REFERENCES = {"floor", "naive"}

# Targets (see README: the engine against the peers, in the same run).
BURST_TARGETS = [("nchan", 15.0), ("node-write", 15.0), ("sse-starlette", 50.0), ("floor", 0.6)]
PACED_P99_TARGET_NS = 10e6
IDLE_TARGET_BYTES = 1024
SLOW_TARGET_PERCENT = 20.0

COLOURS = {"engine": "#2f6db5", "peer": "#e07b39", "reference": "#9a9a9a"}
GROUP_NAMES = {"engine": "sse-engine hosts", "peer": "peers", "reference": "references"}
FAIL_COLOUR = "#b3261e"
INK = "#222222"
MUTED = "#666666"
GRID = "#e3e3e3"


# ---------------------------------------------------------------- reading the results

def dig(value, *keys):
    """value[k1][k2]…, or None when any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def number(value) -> float | None:
    """A finite number, or None (JSON null, strings, NaN and absurd magnitudes are not figures)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) and abs(value) < 1e18 else None


def median_of(spread) -> float | None:
    """The median of a `{"median","min","max"}` figure (or a plain number)."""
    return number(spread.get("median")) if isinstance(spread, dict) else number(spread)


def spread_of(spread) -> tuple[float | None, float | None, float | None]:
    if not isinstance(spread, dict):
        value = number(spread)
        return value, value, value
    return number(spread.get("median")), number(spread.get("min")), number(spread.get("max"))


@dataclass
class Host:
    name: str
    label: str
    group: str
    about: str = ""
    available: bool = True
    reason: str | None = None


class Results:
    """The results file, with lookups that never raise on missing or odd data."""

    def __init__(self, data: dict):
        self.data = data if isinstance(data, dict) else {}
        self.hosts: dict[str, Host] = {}
        for entry in self.data.get("hosts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                name = entry["name"]
                self.hosts[name] = Host(
                    name, str(entry.get("label") or name), str(entry.get("group") or guess_group(name)),
                    str(entry.get("about") or ""), entry.get("available") is not False,
                    entry.get("unavailable_reason"))
        self.scenarios: dict[str, dict] = {}
        for entry in self.data.get("scenarios") or []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                if not isinstance(entry.get("results"), dict):
                    entry = dict(entry, results={})
                self.scenarios[entry["id"]] = entry
        for entry in self.scenarios.values():  # hosts only seen in results
            for name in entry["results"]:
                self.hosts.setdefault(name, Host(name, name, guess_group(name)))

    def scenario(self, sid: str) -> dict | None:
        return self.scenarios.get(sid)

    def host(self, name: str) -> Host:
        return self.hosts.get(name) or Host(name, name, guess_group(name))

    def rows(self, scenario: dict) -> list[str]:
        """Host names to show for a scenario: every host that has a result, and every
        host of the run that should have one (paced scenarios leave the references out)."""
        results = scenario["results"]
        wanted = [h for h in self.hosts
                  if h in results or (scenario.get("kind") == "burst")
                  or (scenario.get("kind") == "paced" and self.hosts[h].group != "reference")]
        return wanted + [h for h in results if h not in wanted]


def guess_group(name: str) -> str:
    if name in ENGINE_HOSTS:
        return "engine"
    return "reference" if name in REFERENCES else "peer"


def error_of(result) -> str | None:
    """Why a host has no figures in a scenario, or None when it has some."""
    if result is None:
        return "not run"
    if not isinstance(result, dict):
        return "failed: unreadable result"
    if "error" in result:
        text = " ".join(str(result.get("error") or "unknown error").split())
        if text.startswith("unavailable"):
            return text
        wall = number(result.get("wall_seconds"))
        return f"failed after {wall:g} s: {text}" if wall is not None else f"failed: {text}"
    if result.get("bench") == "sse_reconnect_storm":
        return None
    if not isinstance(dig(result, "hosts", 0), dict):
        return "failed: no host figures in the result"
    return None


def host_figures(scenario: dict | None, name: str) -> dict | None:
    """`hosts[0]` of a burst or paced result, or None."""
    if scenario is None:
        return None
    result = scenario["results"].get(name)
    if error_of(result):
        return None
    return dig(result, "hosts", 0)


def host_error(scenario: dict | None, name: str) -> str:
    if scenario is None:
        return "not measured (scenario not run)"
    return error_of(scenario["results"].get(name)) or ""


def phase(scenario: dict | None, name: str, index: int) -> dict | None:
    figures = host_figures(scenario, name)
    found = dig(figures, "phases", index)
    return found if isinstance(found, dict) else None


def burst_rate(scenario: dict | None, name: str) -> float | None:
    return median_of(dig(host_figures(scenario, name), "deliveries_per_s"))


def phase_runs(found: dict | None) -> int:
    runs = dig(found, "runs")
    return len(runs) if isinstance(runs, list) else 0


def kept_up(found: dict | None) -> bool | None:
    return None if found is None else found.get("keeps_up") is True


# ---------------------------------------------------------------- formatting

def fmt_int(value) -> str:
    value = number(value)
    return "–" if value is None else f"{value:,.0f}"


def fmt_ms(ns, unit: bool = False) -> str:
    """Nanoseconds as milliseconds with one decimal (seconds from 10 s on)."""
    ns = number(ns)
    if ns is None:
        return "–"
    if ns >= 10e9:
        return f"{ns / 1e9:,.1f} s"
    ms = ns / 1e6
    text = f"{ms:,.2f}" if 0 < ms < 0.1 else f"{ms:,.1f}"
    return f"{text} ms" if unit else text


def fmt_bytes(value) -> str:
    value = number(value)
    if value is None:
        return "–"
    if abs(value) < 1024:
        return f"{value:,.0f} B"
    if abs(value) < 10 * 1024:
        return f"{value / 1024:,.2f} KiB"
    if abs(value) < 1024 * 1024:
        return f"{value / 1024:,.1f} KiB"
    if abs(value) < 1024 ** 3:
        return f"{value / 1024 ** 2:,.1f} MiB"
    return f"{value / 1024 ** 3:,.1f} GiB"


def fmt_ratio(value) -> str:
    value = number(value)
    if value is None:
        return "–"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.1f}×" if value >= 1 else f"{value:.2f}×"


def fmt_spread(spread, fmt) -> str:
    """`median (min–max)`, or just the median when the runs agree (or there is one)."""
    mid, lo, hi = spread_of(spread)
    if mid is None:
        return "–"
    if lo is None or hi is None or fmt(lo) == fmt(hi):
        return fmt(mid)
    return f"{fmt(mid)} ({fmt(lo)}–{fmt(hi)})"


def fmt_compact(value: float) -> str:
    """Axis ticks: 0, 500k, 1.5M."""
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def fmt_duration_tick(ns: float) -> str:
    return f"{ns / 1e9:g} s" if ns >= 1e9 else f"{ns / 1e6:g} ms"


def fmt_bytes_tick(value: float) -> str:
    if value >= 1024 * 1024:
        return f"{value / 1024 ** 2:g} MiB"
    return f"{value / 1024:g} KiB" if value >= 1024 else f"{value:g} B"


def fmt_duration(seconds) -> str:
    seconds = number(seconds)
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def fmt_when(stamp) -> str:
    try:
        when = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp or "unknown date")
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def md(text) -> str:
    """Text for a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A Markdown table; `align` holds one of l/r per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def describe(scenario: dict) -> str:
    """What a scenario does, from its parameters."""
    s = scenario
    kind = s.get("kind")
    try:
        if kind == "burst":
            return (f"burst: {s['clients']:,} clients × {s['events']} events × {s['size']:,} B, "
                    f"{s['runs']} run{'s' if s['runs'] != 1 else ''}")
        if kind == "paced":
            text = (f"paced: {s['clients']:,} clients × {s['rate']:,g} events/s "
                    f"(= {s['clients'] * s['rate']:,.0f} deliveries/s) for {s['seconds']:g} s, "
                    f"{s['size']:,} B, {s['runs']} run{'s' if s['runs'] != 1 else ''}")
            if s.get("stalled_percent"):
                text += f"; then {s['stalled_percent']} % of the clients stop reading"
            return text
        if kind == "storm":
            return (f"reconnect storm: {s['live']:,} live + {s['storm']:,} reconnecting clients, "
                    f"{s['rate']:,g} events/s, two windows of {s['seconds']:g} s")
    except (KeyError, TypeError, ValueError):
        pass
    return str(kind or "unknown kind")


# ---------------------------------------------------------------- SVG charts

@dataclass
class Bar:
    value: float | None
    text: str
    fill: str
    hatch: bool = False
    lo: float | None = None  # whisker (min–max over the runs)
    hi: float | None = None


@dataclass
class Row:
    label: str
    bars: list[Bar] = field(default_factory=list)
    note: str = ""           # said instead of the bars (failed, unavailable, not run)
    tag: str = ""            # said after the bars (fell behind)


@dataclass
class Axis:
    lo: float
    hi: float
    log: bool
    ticks: list[tuple[float, str]]
    title: str
    minor: list[float] = field(default_factory=list)

    def fraction(self, value: float) -> float:
        if self.log:
            value = max(value, self.lo)
            return (math.log(value) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        return (value - self.lo) / (self.hi - self.lo)


def linear_axis(values: list[float], fmt, title: str) -> Axis:
    top = max([v for v in values if v is not None and v > 0], default=1.0)
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    hi = step * math.ceil(top / step)
    count = round(hi / step)
    return Axis(0.0, hi, False, [(i * step, fmt(i * step)) for i in range(count + 1)], title)


def log_axis(values: list[float], fmt, title: str, base: int = 10) -> Axis:
    """Ticks at powers of `base` around the positive values (and minor lines at 2× and 5×
    for base 10)."""
    positive = [v for v in values if v is not None and v > 0] or [1.0]
    low = math.floor(math.log(min(positive), base) + 1e-9)
    if min(positive) / base ** low < 2:  # room for the shortest bar to show
        low -= 1
    high = math.ceil(math.log(max(positive), base) - 1e-9)
    if high <= low:
        high = low + 1
    every = max(1, math.ceil((high - low) / 8))
    ticks = [(float(base) ** k, fmt(float(base) ** k)) for k in range(low, high + 1, every)]
    minor = [m * float(base) ** k for k in range(low, high) for m in (2, 5)] if base == 10 and every == 1 else []
    return Axis(float(base ** low), float(base ** high), True, ticks, title, minor)


def text_width(text: str, size: float) -> float:
    return len(text) * size * 0.58


def svg_text(x, y, text, size=12, anchor="start", fill=INK, weight="", style="", halo=False) -> str:
    extra = (f' font-weight="{weight}"' if weight else "") + (f' font-style="{style}"' if style else "")
    if halo:  # stays readable over grid and marker lines
        extra += ' stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'

    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{extra}>{escape(text)}</text>')


def clip(text: str, width: float, size: float) -> str:
    limit = max(8, int(width / (size * 0.58)))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bar_chart(title: str, subtitle: str, rows: list[Row], axis: Axis, legend=(),
              markers=(), width: int = 760, empty: str = "no data") -> str:
    """A horizontal bar chart: one row per host, one or more bars per row (one per series),
    value labels beside the bars, optional whiskers, hatched bars, vertical marker lines
    (value, label) and a legend [(label, fill, hatched)]."""
    left, right = 196, width - 118
    plot = right - left
    series = max([len(r.bars) for r in rows] + [1])
    bar_h = 16 if series == 1 else 11
    row_h = series * bar_h + (series - 1) * 2 + 12
    legend_svg, legend_h = draw_legend(legend, width)
    top = 56 + legend_h + (14 if markers else 0)
    height = top + max(len(rows), 1) * row_h + 52

    def x_of(value: float) -> float:
        return left + plot * min(max(axis.fraction(value), 0.0), 1.0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" role="img" '
        f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
        f"<title>{escape(title)}</title>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#000000" '
        'stroke-opacity="0.35" stroke-width="2"/></pattern></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        svg_text(12, 24, title, size=16, weight="bold"),
        svg_text(12, 43, clip(subtitle, width - 24, 12), size=12, fill=MUTED),
    ]
    out += legend_svg
    bottom = top + max(len(rows), 1) * row_h
    if not rows:
        out.append(svg_text(left + 4, top + row_h / 2 + 4, empty, size=12, fill=MUTED, style="italic"))
        out.append("</svg>")
        return "\n".join(out) + "\n"
    for value in axis.minor:
        x = x_of(value)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}" '
                   'stroke-width="0.6" stroke-dasharray="2 3"/>')
    for value, label in axis.ticks:
        x = x_of(value)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom + 4}" stroke="{GRID}"/>')
        out.append(svg_text(x, bottom + 18, label, size=11, anchor="middle", fill=MUTED))
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999999"/>')
    out.append(svg_text((left + right) / 2, bottom + 38, axis.title, size=12, anchor="middle", fill=MUTED))
    for value, label in markers:
        x = x_of(value)
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{bottom}" stroke="{FAIL_COLOUR}" '
                   'stroke-width="1.2" stroke-dasharray="5 3"/>')
        out.append(svg_text(x, top - 9, label, size=11, anchor="middle", fill=FAIL_COLOUR))
    for index, row in enumerate(rows):
        y = top + index * row_h + 6
        middle = y + (row_h - 12) / 2 + 4
        label_y = middle - 6 if row.tag else middle
        out.append(svg_text(left - 8, label_y, clip(row.label, left - 20, 12), size=12, anchor="end"))
        if row.tag:
            out.append(svg_text(left - 8, label_y + 14, clip(row.tag, left - 20, 11), size=11,
                                anchor="end", fill=FAIL_COLOUR, weight="bold"))
        if row.note or not row.bars:
            note = row.note or "no data"
            out.append(svg_text(left + 4, y + (row_h - 12) / 2 + 4, clip(note, width - left - 12, 11),
                                size=11, fill=FAIL_COLOUR, style="italic", halo=True))
            continue
        for k, bar in enumerate(row.bars):
            draw_bar(out, bar, y + k * (bar_h + 2), bar_h, left, width, x_of)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def draw_legend(legend, width: int) -> tuple[list[str], int]:
    """Legend swatches [(label, fill, hatched)] in lines from y = 56; returns the SVG and
    the height it takes."""
    out, x, y = [], 12.0, 56
    for label, fill, hatched in legend:
        step = 17 + text_width(label, 12) + 18
        if x > 12 and x + step > width - 8:
            x, y = 12.0, y + 20
        out.append(f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{fill}"/>')
        if hatched:
            out.append(f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="url(#hatch)"/>')
        out.append(svg_text(x + 17, y + 10.5, label, size=12))
        x += step
    return out, (y - 56 + 22 if legend else 0)


def draw_bar(out: list[str], bar: Bar, y: float, h: float, left: float, width: int, x_of) -> None:
    """One bar with its whisker and value label (beside the bar, or inside its end when
    there is no room)."""
    label_size = 11 if h < 14 else 12
    if bar.value is None:
        out.append(svg_text(left + 4, y + h - 2, clip(bar.text or "–", width - left - 8, label_size),
                            size=label_size, fill=FAIL_COLOUR, style="italic", halo=True))
        return
    end = x_of(bar.value) if bar.value > 0 else left
    if end > left:
        out.append(f'<rect x="{left}" y="{y:.1f}" width="{end - left:.1f}" height="{h}" fill="{bar.fill}"/>')
        if bar.hatch:
            out.append(f'<rect x="{left}" y="{y:.1f}" width="{end - left:.1f}" height="{h}" fill="url(#hatch)"/>')
    reach = end
    if bar.lo is not None and bar.hi is not None and bar.hi > bar.lo:
        x0, x1, mid = x_of(bar.lo), x_of(bar.hi), y + h / 2
        out.append(f'<path d="M{x0:.1f} {mid:.1f}H{x1:.1f}M{x0:.1f} {mid - 3:.1f}V{mid + 3:.1f}'
                   f'M{x1:.1f} {mid - 3:.1f}V{mid + 3:.1f}" stroke="{INK}" stroke-width="1" fill="none"/>')
        reach = max(reach, x1)
    if reach + 5 + text_width(bar.text, label_size) <= width - 4:
        out.append(svg_text(reach + 5, y + h - 3, bar.text, size=label_size, halo=True))
        return
    ink = INK if is_light(bar.fill) else "#ffffff"
    out.append(svg_text(end - 5, y + h - 3, bar.text, size=label_size, anchor="end", fill=ink, weight="bold"))


def is_light(colour: str) -> bool:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b > 150


def lighten(colour: str, amount: float) -> str:
    """Mixes a #rrggbb colour with white."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def group_legend(groups) -> list[tuple[str, str, bool]]:
    present = [g for g in ("engine", "peer", "reference") if g in groups]
    return [(GROUP_NAMES[g], COLOURS[g], g == "reference") for g in present]


def fail_row(results: Results, name: str, why: str) -> Row:
    return Row(results.host(name).label, note=why)


# ---------------------------------------------------------------- the charts

def headline_chart(results: Results) -> str:
    shown = results.scenario(HEADLINE)
    caveat = ""
    if shown is None:
        shown = next((results.scenario(s) for s in BURSTS if results.scenario(s)), None)
        caveat = f"{HEADLINE} is not in this run" + (f"; showing {shown['id']}" if shown else "")
    title = "Fan-out: deliveries per second by host"
    if shown is None:
        return bar_chart(title, caveat, [], linear_axis([], fmt_compact, "deliveries/s"),
                         empty="no burst scenario in this results file")
    rows, groups = [], set()
    for name in results.rows(shown):
        host = results.host(name)
        figures = host_figures(shown, name)
        mid, lo, hi = spread_of(dig(figures, "deliveries_per_s"))
        if mid is None:
            rows.append(fail_row(results, name, host_error(shown, name) or "no figures"))
            continue
        groups.add(host.group)
        rows.append(Row(host.label, [Bar(mid, fmt_int(mid), COLOURS.get(host.group, COLOURS["peer"]),
                                         host.group == "reference", lo, hi)]))
    values = [v for r in rows for b in r.bars for v in (b.value, b.hi)]
    subtitle = (f"{caveat}: " if caveat else f"{shown['id']}: ") + describe(shown).removeprefix("burst: ")
    if number(shown.get("runs")) != 1:
        subtitle += "; median, whiskers min–max"
    axis = linear_axis(values, fmt_compact, "deliveries per second (more is better)")
    return bar_chart(title, subtitle, rows, axis, group_legend(groups))


def burst_grouped_chart(results: Results) -> str | None:
    """Every burst scenario side by side (one bar per scenario per host), log scale."""
    shown = [results.scenario(s) for s in BURSTS if results.scenario(s)]
    shown += [s for s in results.scenarios.values() if s.get("kind") == "burst" and s not in shown]
    if not shown:
        return None
    shades = [0.62, 0.42, 0.2, 0.0]
    shades = shades[-len(shown):] if len(shown) <= len(shades) else shades
    names = []
    for scenario in shown:
        names += [n for n in results.rows(scenario) if n not in names]
    rows, groups = [], set()
    for name in names:
        host = results.host(name)
        colour = COLOURS.get(host.group, COLOURS["peer"])
        bars = []
        for k, scenario in enumerate(shown):
            rate = burst_rate(scenario, name)
            shade = lighten(colour, shades[k % len(shades)])
            text = fmt_int(rate) if rate is not None else (
                f"{scenario['id']}: {host_error(scenario, name) or 'no figures'}")
            bars.append(Bar(rate, text, shade, host.group == "reference"))
        if all(b.value is None for b in bars):
            errors = [host_error(s, name) for s in shown]
            note = errors[0] if len(set(errors)) == 1 else "; ".join(
                f"{s['id']}: {e}" for s, e in zip(shown, errors))
            rows.append(fail_row(results, name, note))
            continue
        groups.add(host.group)
        rows.append(Row(host.label, bars))
    legend = group_legend(groups) + [(s["id"], lighten("#555555", shades[k % len(shades)]), False)
                                     for k, s in enumerate(shown)]
    axis = log_axis([b.value for r in rows for b in r.bars], fmt_compact,
                    "deliveries per second, log scale (more is better)")
    subtitle = "medians; bars from top to bottom: " + ", ".join(s["id"] for s in shown)
    return bar_chart("Burst fan-out, every scenario", subtitle, rows, axis, legend)


def latency_chart(results: Results, sid: str) -> str:
    scenario = results.scenario(sid)
    title = "Paced fan-out: latency from the schedule"
    if scenario is None:
        return bar_chart(title, f"{sid} is not in this run", [],
                         log_axis([], fmt_duration_tick, "latency"), empty=f"{sid} not measured")
    rows, groups = [], set()
    for name in results.rows(scenario):
        host = results.host(name)
        found = phase(scenario, name, 0)
        p50, p99 = median_of(dig(found, "p50_ns")), median_of(dig(found, "p99_ns"))
        if p99 is None:
            why = host_error(scenario, name) or dig(found, "note") or "no figures"
            rows.append(fail_row(results, name, why))
            continue
        groups.add(host.group)
        colour = COLOURS.get(host.group, COLOURS["peer"])
        _, lo, hi = spread_of(dig(found, "p99_ns"))
        tag = ""
        if not kept_up(found):
            runs = phase_runs(found)
            tag = f"fell behind ({runs} run{'s' if runs != 1 else ''})"
        rows.append(Row(host.label, [
            Bar(p50, "p50 " + fmt_ms(p50, unit=True), lighten(colour, 0.5), host.group == "reference"),
            Bar(p99, "p99 " + fmt_ms(p99, unit=True), colour, host.group == "reference", lo, hi),
        ], tag=tag))
    values = [v for r in rows for b in r.bars for v in (b.value, b.lo, b.hi)]
    axis = log_axis(values + [PACED_P99_TARGET_NS], fmt_duration_tick,
                    "latency from the event's slot in the schedule, log scale (less is better)")
    legend = group_legend(groups) + [("p50", "#c8c8c8", False), ("p99 (whiskers min–max)", "#6e6e6e", False)]
    subtitle = f"{sid}: " + describe(scenario).removeprefix("paced: ")
    return bar_chart(title, subtitle, rows, axis, legend,
                     markers=[(PACED_P99_TARGET_NS, "10 ms target")])


def memory_samples(results: Results, name: str, sids: list[str], key: str) -> list[float]:
    values = []
    for sid in sids:
        value = number(dig(host_figures(results.scenario(sid), name), key))
        if value is not None:
            values.append(value)
    return values


def sample_scenarios(results: Results) -> tuple[list[str], str]:
    """The 10k-client scenarios present, or (for smoke and partial runs) every burst and
    paced scenario, with a caveat saying so."""
    present = [s for s in TEN_K if s in results.scenarios]
    if present:
        return present, ""
    fallback = [sid for sid, s in results.scenarios.items() if s.get("kind") in ("burst", "paced")]
    return fallback, ("none of " + ", ".join(TEN_K) + " in this run; from " + ", ".join(fallback)
                      if fallback else "")


def memory_chart(results: Results) -> str:
    sids, caveat = sample_scenarios(results)
    title = "Host memory per idle SSE connection"
    rows, groups = [], set()
    for name in results.hosts:
        host = results.host(name)
        values = memory_samples(results, name, sids, "rss_per_idle_conn_bytes")
        if not values:
            rows.append(fail_row(results, name, first_error(results, name, sids)))
            continue
        groups.add(host.group)
        mid = statistics.median(values)
        text = fmt_bytes(mid) + (" (references keep only the socket)" if host.group == "reference" and mid < 64 else "")
        rows.append(Row(host.label, [Bar(mid, text, COLOURS.get(host.group, COLOURS["peer"]),
                                         host.group == "reference", min(values), max(values))]))
    values = [v for r in rows for b in r.bars for v in (b.value, b.lo, b.hi)]
    axis = log_axis(values + [IDLE_TARGET_BYTES], fmt_bytes_tick,
                    "RSS growth of the host process ÷ idle connections, log scale (less is better)", base=4)
    subtitle = ("median over " + ", ".join(sids) + "; whiskers min–max") if sids else "no scenario with clients in this run"
    if caveat:
        subtitle = caveat
    return bar_chart(title, subtitle, rows, axis, group_legend(groups),
                     markers=[(IDLE_TARGET_BYTES, "1 KiB target")], empty="not measured")


def first_error(results: Results, name: str, sids: list[str]) -> str:
    for sid in sids:
        scenario = results.scenario(sid)
        if scenario is not None and name in scenario["results"]:
            why = host_error(scenario, name)
            if why:
                return why
    return "not measured"


# ---------------------------------------------------------------- targets

def targets(results: Results) -> list[list[str]]:
    rows = []
    burst = results.scenario(HEADLINE)
    engine = burst_rate(burst, ENGINE)
    for peer, factor in BURST_TARGETS:
        target = f"{HEADLINE}: engine ≥ {factor:g}× {results.host(peer).label} (deliveries/s)"
        other = burst_rate(burst, peer)
        if engine is None or not other:
            missing = "engine" if engine is None else peer
            why = host_error(burst, missing) if burst else "scenario not run"
            measured = f"not measured ({missing}: {why})" if burst else "not measured (scenario not run)"
            rows.append([target, measured, "not measured"])
            continue
        ratio = engine / other
        measured = f"{fmt_ratio(ratio)} ({fmt_int(engine)} vs {fmt_int(other)} deliveries/s)"
        floor = burst_rate(burst, "floor")
        if floor and peer != "floor":
            # What this machine allows at all: the coalesced floor against the same peer.
            measured += f"; the coalesced floor itself: {fmt_ratio(floor / other)}"
        rows.append([target, measured, verdict(ratio >= factor)])
    for sid in PACED:
        scenario = results.scenario(sid)
        target = f"{sid}: engine p99 from schedule < {PACED_P99_TARGET_NS / 1e6:g} ms"
        found = phase(scenario, ENGINE, 0)
        p99 = median_of(dig(found, "p99_ns"))
        behind = [results.host(n).label for n in (scenario or {}).get("results", {})
                  if n != ENGINE and phase(scenario, n, 0) is not None and not kept_up(phase(scenario, n, 0))]
        peers = "; fell behind: " + (", ".join(behind) if behind else "none")
        if p99 is None:
            why = host_error(scenario, ENGINE) if scenario else "scenario not run"
            rows.append([target, f"not measured ({why})" + (peers if scenario else ""), "not measured"])
            continue
        ok = kept_up(found) and p99 < PACED_P99_TARGET_NS
        measured = fmt_ms(p99, unit=True) + ("" if kept_up(found) else " (engine fell behind)") + peers
        rows.append([target, measured, verdict(ok)])
    sids, caveat = sample_scenarios(results)
    for name in ENGINE_HOSTS:
        target = f"idle memory ≤ 1 KiB per connection: {results.host(name).label}"
        values = memory_samples(results, name, sids, "rss_per_idle_conn_bytes")
        if not values:
            rows.append([target, first_error(results, name, sids), "not measured"])
            continue
        mid = statistics.median(values)
        rows.append([target, f"{fmt_bytes(mid)} (median of {len(values)}" + (f"; {caveat})" if caveat else ")"),
                     verdict(mid <= IDLE_TARGET_BYTES)])
    slow = results.scenario("slow")
    for name in ENGINE_HOSTS:
        target = f"stalled clients raise the others' p99 by < {SLOW_TARGET_PERCENT:g} %: {results.host(name).label}"
        change = slow_change(slow, name)
        if change is None:
            why = (host_error(slow, name) or slow_problem(slow, name)) if slow else "scenario not run"
            rows.append([target, f"not measured ({why})", "not measured"])
            continue
        rows.append([target, f"{change:+.0f} %", verdict(change < SLOW_TARGET_PERCENT)])
    return rows


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def slow_change(slow: dict | None, name: str) -> float | None:
    """Change of the reading clients' p99 with stalled clients, in %."""
    before, after = phase(slow, name, 0), phase(slow, name, 1)
    p0, p1 = median_of(dig(before, "p99_ns")), median_of(dig(after, "p99_ns"))
    if not p0 or p1 is None or not kept_up(before) or not kept_up(after):
        return None
    return (p1 - p0) / p0 * 100


def slow_problem(slow: dict | None, name: str) -> str:
    for index in (0, 1):
        found = phase(slow, name, index)
        if found is None:
            return "no figures"
        if not kept_up(found):
            return found.get("note") or "fell behind"
    return "no figures"


# ---------------------------------------------------------------- the page

def header(results: Results) -> str:
    data = results.data
    mode = data.get("mode") or "unknown"
    lines = [
        "# sse-engine benchmarks",
        "",
        f"Run of {fmt_when(data.get('started'))}, **{mode}** suite, " + (
            f"duration {fmt_duration(data.get('duration_seconds'))}."
            if number(data.get("duration_seconds")) is not None
            else "**unfinished**: the results file holds what was measured so far."),
    ]
    if mode == "smoke":
        lines += ["", "> This is a smoke run: small sizes and one run per scenario, to check that "
                  "everything works. Its figures are not the benchmark; the targets are for the full run."]
    lines += [
        "",
        "Reproduce with `make bench` (every scenario, about 20 minutes; it writes this page, "
        "`results.json` and the charts into `docs/benchmarks/`), or a part of it with "
        "`make bench BENCH_ARGS=\"--scenarios burst-10k-64 --hosts engine,nchan\"`; "
        "`make bench-smoke` is the quick check.",
        "",
        "## Machine",
        "",
        machine_line(data.get("machine")),
        "",
        "## Versions",
        "",
    ]
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    lines.append(table(["component", "version"], [[k, v or "–"] for k, v in versions.items()], "ll")
                 if versions else "Not recorded.")
    lines += ["", unavailable_line(results)]
    return "\n".join(lines)


def machine_line(machine) -> str:
    if not isinstance(machine, dict):
        return "Not recorded."
    parts = [f"{machine.get('cpu', 'unknown CPU')}, {machine.get('cores', '?')} cores",
             f"{machine.get('memory_gib', '?')} GiB memory",
             f"{machine.get('os', 'unknown OS')}, Linux {machine.get('kernel', '?')}",
             f"open-files limit {fmt_int(machine.get('nofile_limit'))}"]
    return "; ".join(parts) + ". The load generator and the host under test share these cores."


def unavailable_line(results: Results) -> str:
    why = {h.name: h.reason or "unavailable" for h in results.hosts.values() if not h.available}
    for scenario in results.scenarios.values():
        for name, result in scenario["results"].items():
            error = error_of(result) or ""
            if error.startswith("unavailable") and name not in why:
                why[name] = error.removeprefix("unavailable:").strip()
    if not results.hosts:
        return "No host recorded."
    if not why:
        return "Every host was available."
    items = [f"- {results.host(n).label} (`{n}`): {md(r)}" for n, r in why.items()]
    return "Unavailable in this run:\n\n" + "\n".join(items)


def scenario_table(results: Results) -> str:
    rows = [[f"`{sid}`", describe(s), str(len(s["results"]))] for sid, s in results.scenarios.items()]
    if not rows:
        return "No scenario in this results file."
    return table(["scenario", "what", "hosts"], rows, "llr")


def burst_section(results: Results) -> str:
    out = ["## Burst fan-out", "",
           "A burst of events published at once to every client; deliveries/s is every "
           "delivery over the time from the first send to the last delivery."]
    present = [s for s in BURSTS if s in results.scenarios]
    present += [sid for sid, s in results.scenarios.items() if s.get("kind") == "burst" and sid not in present]
    if not present:
        return "\n".join(out + ["", "Not measured in this run."])
    for sid in present:
        scenario = results.scenario(sid)
        engine = burst_rate(scenario, ENGINE)
        rows = []
        for name in results.rows(scenario):
            figures = host_figures(scenario, name)
            label = results.host(name).label
            if figures is None:
                rows.append([label, host_error(scenario, name), "", "", "", ""])
                continue
            rate = burst_rate(scenario, name)
            ratio = "–" if name == ENGINE or engine is None or not rate else fmt_ratio(engine / rate)
            rows.append([label, fmt_spread(figures.get("deliveries_per_s"), fmt_int), ratio,
                         f"{fmt_ms(figures.get('since_start_p50_ns'))} / {fmt_ms(figures.get('since_start_p99_ns'))}",
                         fmt_bytes(figures.get("rss_per_idle_conn_bytes")), fmt_int(figures.get("connects_per_s"))])
        out += ["", f"### {sid}: {describe(scenario).removeprefix('burst: ')}", "",
                table(["host", "deliveries/s median (min–max)", "engine ÷ host",
                       "p50 / p99 from burst start (ms)", "RSS / idle conn", "connections/s"], rows)]
    out += ["", "![Deliveries per second in every burst scenario, by host](burst.svg)"]
    return "\n".join(out)


def paced_section(results: Results) -> str:
    out = ["## Paced fan-out", "",
           "Events requested on a fixed schedule: latency counts from each event's slot, so a "
           "host that queues or falls behind shows it. A host **keeps up** when every client "
           "has every event within 1 s of the last slot; the first run that does not ends its "
           "measurements (its backlog would spill into the next run), so its figures come "
           "from fewer runs.",
           "", "![Latency from the schedule, paced-10k](latency.svg)"]
    if "paced-1k" in results.scenarios:
        out += ["", "![Latency from the schedule, paced-1k](latency-1k.svg)"]
    present = [sid for sid in PACED if sid in results.scenarios]
    if not present:
        return "\n".join(out + ["", "Not measured in this run."])
    for sid in present:
        scenario = results.scenario(sid)
        rows = []
        for name in results.rows(scenario):
            label = results.host(name).label
            found = phase(scenario, name, 0)
            if found is None:
                rows.append([label, host_error(scenario, name) or "no figures"] + [""] * 7)
                continue
            rows.append([label, keep_up_text(found), fmt_spread(found.get("deliveries_per_s"), fmt_int),
                         fmt_ms(median_of(found.get("p50_ns"))), fmt_spread(found.get("p99_ns"), fmt_ms),
                         fmt_ms(median_of(found.get("max_ns"))), fmt_ms(median_of(found.get("stamp_p99_ns"))),
                         fmt_spread(found.get("host_cpu_seconds"), lambda v: f"{v:.2f}"),
                         fmt_ms(median_of(found.get("lag_ns")))])
        out += ["", f"### {sid}: {describe(scenario).removeprefix('paced: ')}", "",
                table(["host", "kept up?", "delivered/s", "p50 (ms)", "p99 (ms)", "max (ms)",
                       "p99 after publishing (ms)", "host CPU s / run", "lag at end (ms)"], rows, "llrrrrrrr")]
    return "\n".join(out)


def keep_up_text(found: dict) -> str:
    """yes, or in which run the host fell behind (the load generator stops at that run, so
    the figures come from the runs up to it)."""
    if kept_up(found):
        return "yes"
    runs = phase_runs(found)
    if runs == 0:
        return f"no: {found.get('note') or 'not run'}"
    return f"**no**: fell behind in run {runs} " + (
        "(figures from that run)" if runs == 1 else f"(figures from runs 1–{runs})")


def resources_section(results: Results) -> str:
    sids, caveat = sample_scenarios(results)
    source = caveat or "over the samples of " + ", ".join(f"`{s}`" for s in sids)
    out = ["## Idle memory and connection rate", "",
           "![RSS per idle connection by host](memory.svg)", "",
           f"**RSS per idle connection**: growth of the host process's resident memory from before "
           f"the clients connected to 1 s after, ÷ clients; kernel socket memory is not in it. "
           f"Median, min and max {source}.", ""]
    out.append(sample_table(results, sids, "rss_per_idle_conn_bytes", fmt_bytes))
    out += ["", "**Connections/s**: new SSE connections per second through the host, the load "
            "generator opening up to 512 at a time (for `node-engine` and `py-engine` this is the "
            "rate at which Express or `http.server` hands sockets over to the engine).", ""]
    out.append(sample_table(results, sids, "connects_per_s", fmt_int))
    return "\n".join(out)


def sample_table(results: Results, sids: list[str], key: str, fmt) -> str:
    rows = []
    for name in results.hosts:
        values = memory_samples(results, name, sids, key)
        label = results.host(name).label
        if not values:
            rows.append([label, first_error(results, name, sids), "", "", ""])
            continue
        rows.append([label, fmt(statistics.median(values)), fmt(min(values)), fmt(max(values)), str(len(values))])
    return table(["host", "median", "min", "max", "samples"], rows)


def slow_section(results: Results) -> str:
    slow = results.scenario("slow")
    out = ["## Slow clients", ""]
    if slow is None:
        return "\n".join(out + ["Not measured in this run."])
    out += [f"`slow`: {describe(slow).removeprefix('paced: ')}. The same host and clients run "
            "twice: first everyone reads, then the stalled clients stop reading (they stay "
            "connected, with a 4 KiB receive buffer from the start, so their backlog stays with "
            "the host rather than in loopback's kernel buffers). Latency is the reading clients' p99 from the schedule; RSS growth is the "
            "host's RSS after the second phase − after the first, ÷ stalled clients.", ""]
    rows = []
    for name in results.rows(slow):
        label = results.host(name).label
        before, after = phase(slow, name, 0), phase(slow, name, 1)
        if before is None:
            rows.append([label, host_error(slow, name) or "no figures", "", "", "", ""])
            continue
        stalled = number(dig(after, "stalled_clients"))
        p0 = fmt_spread(before.get("p99_ns"), fmt_ms) + ("" if kept_up(before) else " (**fell behind**)")
        if after is None:
            p1 = "not run"
        elif phase_runs(after) == 0:
            p1 = after.get("note") or "not run"
        else:
            p1 = fmt_spread(after.get("p99_ns"), fmt_ms) + ("" if kept_up(after) else " (**fell behind**)")
        change = slow_change(slow, name)
        growth = "–"
        r0, r1 = number(dig(before, "rss_after_bytes")), number(dig(after, "rss_after_bytes"))
        if r0 is not None and r1 is not None and stalled and phase_runs(after):
            growth = fmt_bytes((r1 - r0) / stalled)
        rows.append([label, p0, p1, "–" if change is None else f"{change:+.0f} %", growth,
                     fmt_int(stalled) if stalled is not None else "–"])
    out.append(table(["host", "p99 without stalled (ms)", "p99 with stalled (ms)", "change",
                      "RSS growth / stalled client", "stalled clients"], rows))
    return "\n".join(out)


def storm_section(results: Results) -> str:
    storm = results.scenario("storm")
    out = ["## Reconnect storm", ""]
    if storm is None:
        return "\n".join(out + ["Not measured in this run."])
    out += [f"`storm`, engine only: {describe(storm).removeprefix('reconnect storm: ')}. "
            "The live clients stay connected through a baseline window and a storm window in "
            "which the other clients keep disconnecting and reconnecting with `Last-Event-ID`; "
            "every client must get every event exactly once and in order.", ""]
    result = storm["results"].get(ENGINE)
    why = error_of(result)
    if why:
        return "\n".join(out + [f"Engine: {md(why)}."])
    base, window = as_dict(result.get("baseline")), as_dict(result.get("storm_window"))
    clients = as_dict(window.get("storm"))
    lost = [number(window.get("live_lost")), number(clients.get("lost"))]
    dups = [number(window.get("live_duplicates")), number(clients.get("duplicates"))]
    gaps = [number(window.get("live_gap_events")), number(clients.get("gap_events")), number(window.get("host_gaps"))]
    rows = [
        ["reconnects/s (while publishing)", fmt_int(result.get("reconnects_per_s"))],
        ["replayed events/s (host counter)",
         f"{fmt_int(window.get('replayed_per_s'))} ({fmt_int(window.get('host_events_replayed'))} in "
         f"{number(window.get('window_seconds')) or 0:.1f} s; client side {fmt_int(clients.get('replayed_client_side'))})"],
        ["catch-up per reconnect p50 / p99 (ms)",
         f"{fmt_ms(clients.get('catch_up_p50_ns'))} / {fmt_ms(clients.get('catch_up_p99_ns'))}"],
        ["live p50 / p99 without the storm (ms)", f"{fmt_ms(base.get('p50_ns'))} / {fmt_ms(base.get('p99_ns'))}"],
        ["live p50 / p99 during the storm (ms)", f"{fmt_ms(window.get('p50_ns'))} / {fmt_ms(window.get('p99_ns'))}"],
        ["live p99 storm ÷ baseline", fmt_ratio(result.get("p99_ratio"))],
        ["lost / duplicate / gap events (live + storm clients; host gaps)",
         f"{fmt_total(lost)} / {fmt_total(dups)} / {fmt_total(gaps)}"],
        ["check", "passed" if result.get("ok") is True else "**FAILED**"],
    ]
    return "\n".join(out + [table(["figure", "value"], rows)])


def fmt_total(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return fmt_int(sum(known)) if known else "–"


def notes_section(results: Results) -> str:
    out = ["## How to read these", "", "The hosts:", ""]
    for host in results.hosts.values():
        about = host.about or "no description recorded"
        out.append(f"- **{md(host.label)}** (`{host.name}`, {GROUP_NAMES.get(host.group, host.group)}): {about}")
    out += [
        "",
        "Notes:",
        "",
        "- **One load generator on the same machine.** `sse-loadgen` and the host under test "
        "share the machine's cores (two on the benchmark machine), and loopback TCP work is "
        "charged to the sending side; the load generator competes with the host for CPU. "
        "Compare hosts within one run (every ratio on this page is computed from the same "
        "results file), not across machines.",
        "- **Median of the runs, with min–max.** Every figure is the median over the runs of "
        "its scenario; where the runs differ the table shows (min–max), the charts whiskers.",
        "- **Burst latency** counts from the burst's first send, so it shows when clients "
        "actually had their events (for the engine hosts it equals the latency after "
        "publishing; the naive loop stamps each event at its own loop).",
        "- **Paced latency from the schedule** counts from the moment each event was due, so it "
        "includes the request, the host's queueing and the fan-out; **after publishing** counts "
        "from the host's own timestamp in the event and hides a host's backlog.",
        "- **Targets** are checked against this run: the ratios against the peers and the "
        "coalesced floor are measured in the same run on the same machine; \"not measured\" "
        "means the scenario or one of the hosts is missing from the results.",
        "- **RSS per idle connection** is host process memory only; the kernel's socket "
        "buffers (a few KiB per TCP socket) come on top for every host alike.",
    ]
    return "\n".join(out)


def render_page(results: Results) -> str:
    parts = [
        header(results),
        "## Headline",
        "![Deliveries per second by host, burst fan-out to 10,000 clients](fanout-10k.svg)",
        "### Targets\n\n" + table(["target", "measured", "status"], targets(results), "lll"),
        "## Scenarios\n\n" + scenario_table(results),
        burst_section(results),
        paced_section(results),
        resources_section(results),
        slow_section(results),
        storm_section(results),
        notes_section(results),
    ]
    return "\n\n".join(parts) + "\n"


def render(data: dict, out: Path) -> list[Path]:
    """Writes results.md and the charts into `out`; returns the files written."""
    results = Results(data)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "fanout-10k.svg": headline_chart(results),
        "burst.svg": burst_grouped_chart(results),
        "latency.svg": latency_chart(results, "paced-10k"),
        "latency-1k.svg": latency_chart(results, "paced-1k") if "paced-1k" in results.scenarios else None,
        "memory.svg": memory_chart(results),
        "results.md": render_page(results),
    }
    written = []
    for name, text in files.items():
        if text is not None:
            (out / name).write_text(text, encoding="utf-8")
            written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results.json written by bench/suite.py")
    parser.add_argument("--out", required=True, help="directory for results.md and the SVG charts")
    opts = parser.parse_args(argv)
    try:
        data = json.loads(Path(opts.results).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"report: cannot read {opts.results}: {error}", file=sys.stderr)
        return 1
    for path in render(data, Path(opts.out)):
        print(f"report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
