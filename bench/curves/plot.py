#!/usr/bin/env python3
"""Draws bench/curves/curves.svg from the CSV files bench/curves/run.sh writes.

Usage: plot.py [DIR]   (default: the directory of this script)

Panels, each with a logarithmic x axis: resident memory against the number of clients
(after start, during a reload at its peak, after the reload), start and reload times
against the number of clients, and, when tokens.csv is there, the memory the store
takes against the number of live refresh tokens (gatehouse's RSS growth for the
memory store, Redis's used_memory growth for Redis). Hand-written SVG: no plotting
library needed.
"""

import csv
import math
import os
import sys

WIDTH, HEIGHT = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 48
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def read(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return None


def nice_max(v):
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def fmt(v):
    if v >= 1_000_000 and v % 1_000_000 == 0:
        return f"{int(v // 1_000_000)}M"
    if v >= 1000 and v % 1000 == 0:
        return f"{int(v // 1000)}k"
    if v == int(v):
        return str(int(v))
    return f"{v:g}"


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(x0, y0, title, xlabel, ylabel, series):
    """One chart at (x0, y0): series is [(name, [(x, y), ...])], x > 0, log x axis."""
    out = [f'<g transform="translate({x0},{y0})">']
    out.append(f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{esc(title)}</text>')
    points = [p for _, pts in series for p in pts]
    if not points:
        out.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></g>')
        return out
    xs = [p[0] for p in points]
    lo = 10 ** math.floor(math.log10(min(xs)))
    hi = 10 ** math.ceil(math.log10(max(xs)))
    if hi == lo:
        hi = lo * 10
    ymax = nice_max(max(p[1] for p in points))
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x):
        return LEFT + (math.log10(x) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pw

    def sy(y):
        return TOP + ph - y / ymax * ph

    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    decade = lo
    while decade <= hi * 1.0001:
        x = sx(decade)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{fmt(decade)}</text>')
        decade *= 10
    for i in range(5):
        v = ymax * i / 4
        y = sy(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(round(v, 2))}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 8}" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(
        f'<text x="14" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + ph / 2})">{esc(ylabel)}</text>'
    )
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = sorted(pts)
        if len(pts) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        ly = TOP + 14 + 14 * i
        out.append(f'<line x1="{LEFT + 8}" y1="{ly - 4}" x2="{LEFT + 24}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + 28}" y="{ly}">{esc(name)}</text>')
    out.append("</g>")
    return out


def series(rows, xkey, ykey, scale=1.0, base=None):
    pts = []
    for r in rows:
        x, y = num(r, xkey), num(r, ykey)
        if x is None or y is None or x <= 0:
            continue
        if base is not None:
            b = num(r, base)
            if b is None:
                continue
            y -= b
        pts.append((x, y * scale))
    return pts


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    clients = read(os.path.join(directory, "clients.csv"))
    tokens = read(os.path.join(directory, "tokens.csv"))
    mib = 1 / 1024
    panels = [
        (
            "Resident memory",
            "confidential clients in the config",
            "MiB",
            [
                ("after start", series(clients, "clients", "rss_kib", mib)),
                ("peak during reload", series(clients, "clients", "reload_peak_kib", mib)),
                ("after reload", series(clients, "clients", "reload_after_kib", mib)),
            ],
        ),
        (
            "Start and reload time",
            "confidential clients in the config",
            "seconds",
            [
                ("exec to /healthz 200", series(clients, "clients", "start_ms", 1e-3)),
                ("SIGHUP to new generation", series(clients, "clients", "reload_ms", 1e-3)),
                ("gatehouse check", series(clients, "clients", "check_ms", 1e-3)),
            ],
        ),
    ]
    if tokens:
        memory = [r for r in tokens if r.get("store") == "memory"]
        redis = [r for r in tokens if r.get("store") == "redis"]
        # Runs since the column came measure after a SCAN freed the expired keys.
        scanned = any(num(r, "redis_used_scanned") is not None for r in redis)
        redis_used = "redis_used_scanned" if scanned else "redis_used"
        panels.append(
            (
                "Store memory",
                "live refresh tokens",
                "MiB",
                [
                    ("memory store: RSS growth", series(memory, "issued", "rss_kib", mib, base="rss_base_kib")),
                    ("Redis: used_memory growth", series(redis, "issued", redis_used, mib / 1024, base="redis_base")),
                ],
            )
        )
    total_w = WIDTH * len(panels)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{HEIGHT}" '
        f'viewBox="0 0 {total_w} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{total_w}" height="{HEIGHT}" fill="white"/>',
    ]
    for i, (title, xlabel, ylabel, data) in enumerate(panels):
        svg += panel(i * WIDTH, 0, title, xlabel, ylabel, data)
    svg.append("</svg>")
    out = os.path.join(directory, "curves.svg")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(svg) + "\n")
    print(out)


if __name__ == "__main__":
    main()
