"""The overview's plots over time, drawn as inline SVG on the server from the per-minute
series (series.py): documents decided and deliveries per minute, each delivered document's
submit→delivery latency (p50 and p99 per minute, on a log scale) and the ingress lag. Each
plot is an `img` with a title and a description that says what it shows in words; the
figures behind them are a table below (`details`, minutes that had any), each minute linked
to its documents. Presentation attributes only, never `style`: the console's
Content-Security-Policy allows the SVG as it is."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template

from yarl import URL

from gateway.console.markup import Markup, escape, fill, join
from gateway.console.series import Minute
from gateway.console.words import Words
from gateway.publish.dead_letters import iso_instant

WIDTH, HEIGHT = 720, 190
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 12, 30
DOT_RADIUS = 3
TICK_EVERY_MINUTES = 30
INK, GRID = "#1a1a1a", "#c8c8c8"
ACCEPTED_COLOUR, REFUSED_COLOUR, DELIVERED_COLOUR = "#1f5f99", "#b3261e", "#2e7d32"
P50_COLOUR, P99_COLOUR, LAG_COLOUR = "#1f5f99", "#b35900", "#6a3d9a"

_SVG = Template(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 $width $height" role="img" '
    'aria-labelledby="$id-title $id-desc" class="plot" id="$id">'
    '<title id="$id-title">$title</title><desc id="$id-desc">$desc</desc>'
    '<g class="grid">$grid</g><g class="lines">$lines</g></svg>')
_GRID_LINE = Template('<line x1="$x1" y1="$y1" x2="$x2" y2="$y2" stroke="$colour" '
                      'stroke-width="1"/>')
_TEXT = Template('<text x="$x" y="$y" font-size="11" fill="$ink" text-anchor="$anchor" '
                 'dominant-baseline="middle">$text</text>')
_LINE = Template('<path d="$d" fill="none" stroke="$colour" stroke-width="2" '
                 'stroke-linejoin="round" stroke-linecap="round" class="line-$kind" '
                 'data-points="$points"/>')
_DOT = Template('<circle cx="$x" cy="$y" r="$r" fill="$colour" class="dot-$kind"/>')
_LEGEND = Template('<span class="key line-$kind"></span> $text')
_FIGURE = Template('<figure aria-labelledby="$id-caption"><figcaption id="$id-caption">'
                   '$caption</figcaption><p class="legend">$legend</p>$svg</figure>')
_ROW = Template('<tr data-minute="$minute"><th scope="row"><a href="$href">$time</a></th>'
                '<td class="n">$accepted</td><td class="n">$refused</td>'
                '<td class="n">$delivered</td><td class="n">$p50</td><td class="n">$p99</td>'
                '<td class="n">$lag</td></tr>')
_TH = Template('<th scope="col">$text</th>')
_DETAILS = Template('<details id="series-table"><summary>$summary</summary>'
                    '<table class="letters"><caption>$caption</caption><thead><tr>$head</tr>'
                    '</thead><tbody>$rows</tbody></table></details>')


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # its class (line-KIND), and its legend's key
    legend: str
    colour: str
    values: Sequence[float | None]  # one per minute; None: not measured


@dataclass(frozen=True, slots=True)
class Scale:
    """Where a value goes on the plot's height, and the gridlines with their labels."""

    place: Callable[[float], float]
    ticks: Sequence[tuple[float, str]]


def draw_plots(minutes: Sequence[Minute], words: Words) -> Markup:
    """The three plots and the table of their figures."""
    if not minutes:
        return Markup("")
    throughput = [
        Line("accepted", words("accepted"), ACCEPTED_COLOUR, [m.accepted for m in minutes]),
        Line("refused", words("refused"), REFUSED_COLOUR, [m.refused for m in minutes]),
        Line("delivered", words("deliveries"), DELIVERED_COLOUR,
             [m.delivered for m in minutes])]
    latency = [Line("p50", words("p50"), P50_COLOUR, [m.p50_s for m in minutes]),
               Line("p99", words("p99"), P99_COLOUR, [m.p99_s for m in minutes])]
    lag = [Line("lag", words("ingress_lag"), LAG_COLOUR, [m.lag for m in minutes])]
    return join([
        _figure("throughput-plot", words("throughput_h"), throughput, minutes,
                linear_scale(_highest(throughput)), _throughput_desc(minutes, words)),
        _figure("latency-plot", words("latency_h"), latency, minutes,
                log_scale(latency), _latency_desc(minutes, words)),
        _figure("lag-plot", words("lag_h"), lag, minutes,
                linear_scale(_highest(lag)), _lag_desc(minutes, words)),
        _table(minutes, words)])


def linear_scale(highest: float) -> Scale:
    """0 to a round number at or above `highest` (1, 2 or 5 times a power of ten)."""
    top = nice_ceiling(highest)
    return Scale(lambda v: _y(v / top),
                 [(top * share, f"{top * share:g}") for share in (0.0, 0.5, 1.0)])


def log_scale(lines: Sequence[Line]) -> Scale:
    """Decades of seconds around what the lines hold (1 ms to 1 s when they hold nothing)."""
    values = [v for line in lines for v in line.values if v is not None and v > 0]
    low = math.floor(math.log10(min(values))) if values else -3
    high = max(low + 1, math.ceil(math.log10(max(values))) if values else 0)
    span = high - low

    def place(value: float) -> float:
        return _y((math.log10(max(value, 10.0 ** low)) - low) / span)
    return Scale(place, [(10.0 ** power, duration(10.0 ** power))
                         for power in range(low, high + 1)])


def nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def duration(seconds: float) -> str:
    """A latency for people: 0.4 ms, 12 ms, 1.5 s."""
    if seconds < 0.01:
        return f"{1000 * seconds:.1f} ms"
    if seconds < 1:
        return f"{1000 * seconds:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


def path_of(values: Sequence[float | None], place: Callable[[float], float]
            ) -> tuple[str, list[tuple[float, float]]]:
    """An SVG path through the measured values, broken where one is missing; and the values
    with no measured neighbour, which a path would not show (drawn as dots)."""
    parts: list[str] = []
    alone: list[tuple[float, float]] = []
    drawing = False
    for index, value in enumerate(values):
        if value is None:
            drawing = False
            continue
        x, y = _x(index, len(values)), round(place(value), 1)
        if not drawing and (index + 1 >= len(values) or values[index + 1] is None):
            alone.append((x, y))
            continue
        parts.append(f"{'L' if drawing else 'M'}{x} {y}")
        drawing = True
    return "".join(parts), alone


def _figure(plot_id: str, caption: str, lines: Sequence[Line], minutes: Sequence[Minute],
            scale: Scale, desc: str) -> Markup:
    grid = [fill(_GRID_LINE, x1=LEFT, x2=WIDTH - RIGHT, y1=y, y2=y, colour=GRID)
            for y in (round(scale.place(value), 1) for value, _ in scale.ticks)]
    grid += [fill(_TEXT, x=LEFT - 6, y=round(scale.place(value), 1), ink=INK, anchor="end",
                  text=label) for value, label in scale.ticks]
    for index, minute in enumerate(minutes):
        if minute.start.minute % TICK_EVERY_MINUTES == 0:
            x = _x(index, len(minutes))
            grid.append(fill(_GRID_LINE, x1=x, x2=x, y1=TOP, y2=HEIGHT - BOTTOM, colour=GRID))
            grid.append(fill(_TEXT, x=x, y=HEIGHT - BOTTOM / 2, ink=INK, anchor="middle",
                             text=minute.start.strftime("%H:%M")))
    paths = []
    for line in lines:
        path, alone = path_of(line.values, scale.place)
        paths.append(fill(_LINE, d=path, colour=line.colour, kind=line.kind,
                          points=sum(v is not None for v in line.values)))
        paths += (fill(_DOT, x=x, y=y, r=DOT_RADIUS, colour=line.colour, kind=line.kind)
                  for x, y in alone)
    svg = fill(_SVG, width=WIDTH, height=HEIGHT, id=plot_id, title=caption, desc=desc,
               grid=join(grid), lines=join(paths))
    legend = join(fill(_LEGEND, kind=line.kind, text=line.legend) for line in lines)
    return fill(_FIGURE, id=plot_id, caption=caption, legend=legend, svg=svg)


def _table(minutes: Sequence[Minute], words: Words) -> Markup:
    """The plots' figures, the minutes that had any, newest first."""
    shown = [m for m in reversed(minutes) if not m.empty]
    if not shown:
        return Markup(f'<p id="series-table" class="note">{escape(words("no_minutes"))}</p>')
    heads = ("minute_utc", "accepted", "refused", "deliveries", "p50", "p99", "ingress_lag")
    rows = join(fill(_ROW, minute=iso_instant(m.start), time=m.start.strftime("%H:%M"),
                     href=str(URL("/console/documents").with_query(
                         {"from": m.start.strftime("%Y-%m-%dT%H:%M"),
                          "to": m.start.strftime("%Y-%m-%dT%H:%M")})),
                     accepted=m.accepted, refused=m.refused, delivered=m.delivered,
                     p50=_or_dash(m.p50_s), p99=_or_dash(m.p99_s),
                     lag="–" if m.lag is None else m.lag)
                for m in shown)
    return fill(_DETAILS, summary=words("plot_figures"), caption=words("plot_figures_caption"),
                head=join(fill(_TH, text=words(h)) for h in heads), rows=rows)


def _throughput_desc(minutes: Sequence[Minute], words: Words) -> str:
    busiest = max(minutes, key=lambda m: m.accepted + m.refused)
    return words("throughput_desc", minutes=len(minutes), accepted=sum(m.accepted
                                                                      for m in minutes),
                 refused=sum(m.refused for m in minutes),
                 delivered=sum(m.delivered for m in minutes),
                 peak=busiest.accepted + busiest.refused, at=busiest.start.strftime("%H:%M"))


def _latency_desc(minutes: Sequence[Minute], words: Words) -> str:
    measured = [m for m in minutes if m.p50_s is not None and m.p99_s is not None]
    if not measured:
        return words("latency_none")
    worst = max(measured, key=lambda m: m.p99_s or 0.0)
    last = measured[-1]
    return words("latency_desc", documents=sum(m.latencies for m in measured),
                 p50=_or_dash(last.p50_s), p99=_or_dash(last.p99_s),
                 at=last.start.strftime("%H:%M"), worst=_or_dash(worst.p99_s),
                 worst_at=worst.start.strftime("%H:%M"))


def _lag_desc(minutes: Sequence[Minute], words: Words) -> str:
    sampled = [m for m in minutes if m.lag is not None]
    if not sampled:
        return words("lag_none")
    most = max(sampled, key=lambda m: m.lag or 0)
    return words("lag_desc", most=most.lag, at=most.start.strftime("%H:%M"),
                 last=sampled[-1].lag)


def _highest(lines: Sequence[Line]) -> float:
    return max((v for line in lines for v in line.values if v is not None), default=0.0)


def _x(index: int, count: int) -> float:
    return round(LEFT + (WIDTH - LEFT - RIGHT) * index / max(1, count - 1), 1)


def _y(share: float) -> float:
    """Height for a share of the scale (0: the bottom, 1: the top)."""
    return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * min(1.0, max(0.0, share))


def _or_dash(seconds: float | None) -> str:
    return "–" if seconds is None else duration(seconds)
