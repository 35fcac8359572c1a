"""The equity curve with its drawdown: a self-contained HTML page (inline SVG, no scripts) and a PNG (matplotlib)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

MAX_POINTS = 2_000
WIDTH, HEIGHT, DRAWDOWN_HEIGHT, PAD = 1000, 320, 140, 60


def downsample(times: np.ndarray, *columns: np.ndarray, points: int = MAX_POINTS) -> list[np.ndarray]:
    """At most ``points`` points, keeping each column's lowest value in every bucket (drawdowns stay visible)."""
    if len(times) <= points:
        return [times, *columns]
    edges = np.linspace(0, len(times), points + 1).astype(np.int64)
    picks = [int(start + np.argmin(columns[-1][start:end])) if columns else int(start)
             for start, end in zip(edges[:-1], edges[1:], strict=True) if end > start]
    chosen = np.array(picks, dtype=np.int64)
    return [times[chosen], *(column[chosen] for column in columns)]


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _polyline(xs: np.ndarray, ys: np.ndarray, low: float, high: float, top: int, height: int) -> str:
    span = high - low or 1.0
    px = PAD + xs * (WIDTH - 2 * PAD)
    py = top + height - (ys - low) / span * height
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(px, py, strict=True))


def write_equity_html(path: Path, times: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, *,
                      title: str) -> None:
    if len(times) == 0:
        path.write_text(f"<!doctype html><title>{html.escape(title)}</title><p>No bars.</p>\n", encoding="utf-8")
        return
    t, e, d = downsample(times, equity, -drawdown)
    first, last = int(t[0]), int(t[-1])
    xs = (t - first) / max(last - first, 1)
    low, high = float(np.min(e)), float(np.max(e))
    deepest = float(np.min(d))
    equity_line = _polyline(xs, e, low, high, 20, HEIGHT)
    dd_top = HEIGHT + 60
    dd_points = _polyline(xs, d, deepest, 0.0, dd_top, DRAWDOWN_HEIGHT)
    dd_area = f"{PAD},{dd_top} {dd_points} {WIDTH - PAD},{dd_top}"
    total = HEIGHT + DRAWDOWN_HEIGHT + 100
    labels = [
        f'<text x="{PAD - 6}" y="26" text-anchor="end">{high:,.2f}</text>',
        f'<text x="{PAD - 6}" y="{20 + HEIGHT}" text-anchor="end">{low:,.2f}</text>',
        f'<text x="{PAD - 6}" y="{dd_top + 6}" text-anchor="end">0</text>',
        f'<text x="{PAD - 6}" y="{dd_top + DRAWDOWN_HEIGHT}" text-anchor="end">{deepest:,.2f}</text>',
        f'<text x="{PAD}" y="{total - 10}">{_date(first)}</text>',
        f'<text x="{WIDTH - PAD}" y="{total - 10}" text-anchor="end">{_date(last)}</text>',
        f'<text x="{PAD}" y="14">equity (USDT)</text>',
        f'<text x="{PAD}" y="{dd_top - 8}">drawdown below the running peak (USDT)</text>',
    ]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} svg text{{font-size:12px;fill:#333}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Equity at each bar close (wallet + unrealized PnL) from {_date(first)} to {_date(last)}: start
{float(equity[0]):,.2f}, end {float(equity[-1]):,.2f}, lowest {low:,.2f}, highest {high:,.2f} USDT;
largest drawdown {-deepest:,.2f} USDT.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{total}" viewBox="0 0 {WIDTH} {total}">
<rect x="{PAD}" y="20" width="{WIDTH - 2 * PAD}" height="{HEIGHT}" fill="none" stroke="#ccc"/>
<polyline points="{equity_line}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>
<rect x="{PAD}" y="{dd_top}" width="{WIDTH - 2 * PAD}" height="{DRAWDOWN_HEIGHT}" fill="none" stroke="#ccc"/>
<polygon points="{dd_area}" fill="#d62728" fill-opacity="0.35" stroke="#d62728" stroke-width="0.8"/>
{chr(10).join(labels)}
</svg></body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_equity_png(path: Path, times: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, *,
                     title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
    if len(times):
        t, e, d = downsample(times, equity, -drawdown)
        when = np.array(t, dtype="datetime64[ms]")
        top.plot(when, e, color="#1f77b4", linewidth=1)
        bottom.fill_between(when, d, 0, color="#d62728", alpha=0.4, linewidth=0.5)
    top.set_title(title)
    top.set_ylabel("equity (USDT)")
    bottom.set_ylabel("drawdown (USDT)")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
