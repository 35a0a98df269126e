"""The overview: the map of exchange (一张图) drawn as inline SVG on the server, and the
counts behind it, all from the gateway's own counters (`GatewayMetrics.exchange`).

Agencies sit on a circle, the gateway at its centre. A flow is an arrow from sender to
recipient, curved to its right (so the two directions between a pair stay apart and no flow
runs through the gateway), wider the more deliveries it carried (on a log scale, so one busy
flow does not hide the rest); a sender's refusals are a red arrow from it to the gateway.
Only the heaviest `MAX_EDGES` flows are drawn, so the page stays small whatever the number
of agencies; the tables hold every count. The SVG uses presentation attributes, never
`style`, so that the console's Content-Security-Policy allows it as it is."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

from contracts import Agency
from gateway.console.markup import Markup, fill, join
from gateway.console.words import Lang, Words
from gateway.observe.metrics import Exchange

MAX_EDGES = 400
LABELS_UP_TO = 60  # more agencies than this: names in tooltips only
SIZE = 720
_CENTRE = SIZE / 2
_RADIUS = SIZE / 2 - 110
FLOW_COLOUR = "#1f5f99"
REFUSED_COLOUR = "#b3261e"

_SVG = Template(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 $size $size" role="img" '
    'aria-labelledby="map-title map-desc" class="map">'
    '<title id="map-title">$title</title><desc id="map-desc">$desc</desc>'
    '<defs>$markers</defs><g class="edges">$edges</g><g class="nodes">$hub$nodes</g></svg>')
_MARKER = Template(
    '<marker id="arrow-$kind" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="4" '
    'markerHeight="4" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="$colour"/>'
    '</marker>')
_EDGE = Template(
    '<path d="M$x1 $y1 Q$cx $cy $x2 $y2" fill="none" stroke="$colour" stroke-width="$width" '
    'stroke-opacity="0.75" stroke-linecap="round" marker-end="url(#arrow-$kind)" '
    'data-sender="$sender" data-recipient="$recipient" class="$kind"><title>$tip</title>'
    '</path>')
# How far a flow bends: its control point lies this share of its length off the straight way.
_BEND = 0.25
NODE_RADIUS, HUB_RADIUS = 7, 16
_NODE = Template(
    '<g class="node" data-agency="$agency"><circle cx="$x" cy="$y" r="$r" fill="$fill" '
    'stroke="#1a1a1a" stroke-width="1"/><title>$tip</title>$label</g>')
_LABEL = Template('<text x="$x" y="$y" font-size="12" fill="#1a1a1a" '
                  'text-anchor="$anchor" dominant-baseline="middle">$text</text>')
_HUB = Template('<g class="hub"><circle cx="$c" cy="$c" r="$r" fill="#ffffff" '
                'stroke="#1a1a1a" stroke-width="2"/><text x="$c" y="$below" font-size="13" '
                'fill="#1a1a1a" text-anchor="middle">$name</text></g>')


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class AgencyCounts:
    agency: str
    accepted: int
    refused: int
    delivered: int


def agency_name(agency: Agency, lang: Lang) -> str:
    return agency.name_zh if lang is Lang.ZH and agency.name_zh else agency.name


def places(agencies: Sequence[str]) -> dict[str, Point]:
    """Each agency's place on the circle, in the order given, the first at the top."""
    n = max(1, len(agencies))
    return {agency: Point(round(_CENTRE + _RADIUS * math.sin(2 * math.pi * i / n), 1),
                          round(_CENTRE - _RADIUS * math.cos(2 * math.pi * i / n), 1))
            for i, agency in enumerate(agencies)}


def by_agency(exchange: Exchange, agencies: Sequence[str]) -> list[AgencyCounts]:
    """Every registered agency, and any other the counters name, with what it sent
    (accepted, refused) and what was delivered to it."""
    accepted, refused, delivered = Counter[str](), Counter[str](), Counter[str]()
    for (_, agency), n in exchange.accepted.items():
        accepted[agency] += int(n)
    for (_, agency, _), n in exchange.rejected.items():
        refused[agency] += int(n)
    senders = set()
    for (sender, recipient), n in exchange.flows.items():
        delivered[recipient] += int(n)
        senders.add(sender)
    named = list(agencies) + sorted((set(accepted) | set(refused) | set(delivered) | senders)
                                    - set(agencies))
    return [AgencyCounts(a, accepted[a], refused[a], delivered[a]) for a in named]


def by_type(exchange: Exchange) -> list[tuple[str, int, int]]:
    """(document type, accepted, refused), by type."""
    accepted, refused = Counter[str](), Counter[str]()
    for (document_type, _), n in exchange.accepted.items():
        accepted[document_type] += int(n)
    for (document_type, _, _), n in exchange.rejected.items():
        refused[document_type] += int(n)
    return [(t, accepted[t], refused[t]) for t in sorted(set(accepted) | set(refused))]


def draw_map(registry: Sequence[Agency], counts: Sequence[AgencyCounts], exchange: Exchange,
             words: Words) -> Markup:
    names = {agency.id: agency_name(agency, words.lang) for agency in registry}
    at = places([c.agency for c in counts])
    hub = Point(_CENTRE, _CENTRE)
    flows = sorted(((int(n), sender, recipient)
                    for (sender, recipient), n in exchange.flows.items()
                    if n and sender in at and recipient in at), reverse=True)[:MAX_EDGES]
    heaviest = max([n for n, _, _ in flows] + [c.refused for c in counts] + [1])
    edges = [_edge(at[sender], at[recipient], NODE_RADIUS, n, heaviest, FLOW_COLOUR, "flow", sender,
                   recipient, words("flow_title", sender=sender, recipient=recipient,
                                    count=n))
             for n, sender, recipient in flows]
    edges += [_edge(at[c.agency], hub, HUB_RADIUS, c.refused, heaviest, REFUSED_COLOUR, "refused",
                    c.agency, "", words("refused_title_edge", agency=c.agency, count=c.refused))
              for c in counts if c.refused]
    nodes = [_node(c, at[c.agency], names.get(c.agency, c.agency), len(counts), words)
             for c in counts]
    markers = join(fill(_MARKER, kind=kind, colour=colour)
                   for kind, colour in (("flow", FLOW_COLOUR), ("refused", REFUSED_COLOUR)))
    return fill(_SVG, size=SIZE, title=words("map"), desc=words("map_desc"), markers=markers,
                edges=join(edges), nodes=join(nodes),
                hub=fill(_HUB, c=_CENTRE, r=HUB_RADIUS, below=_CENTRE + HUB_RADIUS + 18,
                         name=words("gateway")))


def _edge(start: Point, end: Point, end_radius: float, count: int, heaviest: int,
          colour: str, kind: str, sender: str, recipient: str, tip: str) -> Markup:
    width = round(1.5 + 6.5 * math.log1p(count) / math.log1p(heaviest), 1)
    dx, dy = end.x - start.x, end.y - start.y
    # The control point, off the middle to the right of the way; the end (the arrow's tip)
    # stops at the node's rim, along the curve's last direction.
    cx, cy = (start.x + dx / 2 - dy * _BEND, start.y + dy / 2 + dx * _BEND)
    last = math.hypot(end.x - cx, end.y - cy) or 1.0
    stop = end_radius + 2
    x2, y2 = end.x - (end.x - cx) / last * stop, end.y - (end.y - cy) / last * stop
    return fill(_EDGE, x1=start.x, y1=start.y, cx=round(cx, 1), cy=round(cy, 1),
                x2=round(x2, 1), y2=round(y2, 1), colour=colour, width=width, kind=kind,
                sender=sender, recipient=recipient, tip=tip)


def _node(counts: AgencyCounts, at: Point, name: str, many: int, words: Words) -> Markup:
    label = Markup("")
    if many <= LABELS_UP_TO:
        outward = 16 if at.x >= _CENTRE else -16
        label = fill(_LABEL, x=round(at.x + outward, 1), y=at.y, text=counts.agency,
                     anchor="start" if outward > 0 else "end")
    return fill(_NODE, agency=counts.agency, x=at.x, y=at.y, r=NODE_RADIUS, label=label,
                fill=REFUSED_COLOUR if counts.refused else "#ffffff",
                tip=words("node_title", name=name, agency=counts.agency,
                          accepted=counts.accepted, refused=counts.refused))


def rate(part: int, whole: int) -> str:
    """`part` of `whole` in percent with one decimal; a dash when there is no whole."""
    return f"{100.0 * part / whole:.1f} %" if whole else "–"
