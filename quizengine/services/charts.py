"""Charts drawn on the server as SVG (no CDN, no script): a histogram and a scatter plot."""

from __future__ import annotations

from xml.sax.saxutils import escape

W, H, PAD = 520, 300, 44


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'class="chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{PAD}" y2="10" stroke="#333"/>',
        f'<text x="{(W + PAD) / 2}" y="{H - 8}" text-anchor="middle" font-size="12">{escape(xlabel)}</text>',
        f'<text x="12" y="{(H - PAD) / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 12 {(H - PAD) / 2})">{escape(ylabel)}</text>',
    ]


def histogram(values: list[float], bins: int = 10, lo: float = 0.0, hi: float = 100.0,
              title: str = "Score distribution", xlabel: str = "score (% of maximum)", ylabel: str = "attempts",
              unit: str = "%") -> str:
    """Counts of ``values`` in equal bins from lo to hi (hi included in the last bin); ``unit`` follows
    each bin's range in its tooltip."""
    counts = [0] * bins
    for v in values:
        k = min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))
        counts[k] += 1
    top = max(counts) or 1
    out = _frame(title, xlabel, ylabel)
    bw = (W - 10 - PAD) / bins
    for k, c in enumerate(counts):
        h = (H - PAD - 10) * c / top
        x = PAD + k * bw
        label = f"{lo + k * (hi - lo) / bins:g}-{lo + (k + 1) * (hi - lo) / bins:g}{unit}: {c}"
        out.append(f'<rect x="{x + 1:.1f}" y="{H - PAD - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#1f5fbf">'
                   f"<title>{escape(label)}</title></rect>")
        out.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">'
                   f"{lo + k * (hi - lo) / bins:g}</text>")
        if c:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD - h - 3:.1f}" text-anchor="middle" font-size="10">{c}</text>')
    out.append("</svg>")
    return "\n".join(out)


def scatter(points: list[tuple[str, float, float]], title: str = "Facility vs discrimination") -> str:
    """Points (label, facility 0..1, discrimination -1..1), with the flag thresholds drawn."""
    out = _frame(title, "facility", "discrimination")
    x = lambda f: PAD + f * (W - 10 - PAD)  # noqa: E731
    y = lambda d: (H - PAD) - (d + 1) / 2 * (H - PAD - 10)  # noqa: E731
    for f in (0.2, 0.95):
        out.append(f'<line x1="{x(f):.1f}" y1="10" x2="{x(f):.1f}" y2="{H - PAD}" stroke="#b3261e" stroke-dasharray="4"/>')
    out.append(f'<line x1="{PAD}" y1="{y(0.2):.1f}" x2="{W - 10}" y2="{y(0.2):.1f}" stroke="#b3261e" stroke-dasharray="4"/>')
    for tick in (0, 0.5, 1):
        out.append(f'<text x="{x(tick):.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">{tick:g}</text>')
    for tick in (-1, 0, 1):
        out.append(f'<text x="{PAD - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:g}</text>')
    for label, f, d in points:
        out.append(f'<circle cx="{x(f):.1f}" cy="{y(d):.1f}" r="4" fill="#1c7c3a" fill-opacity="0.7">'
                   f"<title>{escape(label)}: facility {f:.2f}, discrimination {d:.2f}</title></circle>")
    out.append("</svg>")
    return "\n".join(out)
