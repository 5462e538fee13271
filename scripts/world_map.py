#!/usr/bin/env python3
"""Regenerate the dashboard's world map from the vendored geometry (run by hand after updating a vendored package).

Reads world-atlas's countries-110m TopoJSON (Natural Earth, via npm `world-atlas`) and i18n-iso-countries' code
table (ISO 3166-1 numeric → alpha-2), projects every country with the Natural Earth I projection and writes:

- `web/static/img/world-map.svg`: one `<path id="XX">` per country (alpha-2), all in `<g id="world">`, for the
  page to draw with `<use href="world-map.svg#XX">` (so the page carries only a few bytes per country);
- `analytics/map_regions.py`: the codes the map can draw, so the page never points at a missing shape.

    python scripts/world_map.py [--check]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "studyshelf"
STATIC = PACKAGE / "web" / "static"
TOPOLOGY = STATIC / "vendor" / "world-atlas-2.0.2" / "countries-110m.json"
CODES = STATIC / "vendor" / "i18n-iso-countries-7.14.0" / "codes.json"
SVG = STATIC / "img" / "world-map.svg"
REGIONS = PACKAGE / "analytics" / "map_regions.py"
WIDTH = 960.0
# Shapes without an ISO numeric id in world-atlas: Kosovo has the user-assigned code XK (what IP-to-country
# databases report); the other two are drawn with the country ISO 3166 counts them in.
UNNUMBERED = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}
LEFT_OUT = {"AQ"}  # Antarctica: a fifth of the map's height and no learners


def natural_earth(lon: float, lat: float) -> tuple[float, float]:
    """The Natural Earth I projection (Šavrič et al. 2011; the polynomial d3-geo's geoNaturalEarth1 uses)."""
    lam, phi = math.radians(lon), math.radians(lat)
    phi2 = phi * phi
    phi4 = phi2 * phi2
    x = lam * (0.8707 - 0.131979 * phi2 + phi4 * (-0.013791 + phi4 * (0.003971 * phi2 - 0.001529 * phi4)))
    y = phi * (1.007226 + phi2 * (0.015085 + phi4 * (-0.044475 + 0.028874 * phi2 - 0.005916 * phi4)))
    return x, -y


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """TopoJSON arcs are quantised and delta-encoded: undo both, giving longitude and latitude."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in indexes:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc[1:] if points else arc)  # consecutive arcs share their joining point
    return points


def clip(points: list[tuple[float, float]], keep: Callable[[float], bool], edge: float) -> list[tuple[float, float]]:
    """Sutherland–Hodgman against one meridian: the part of a ring on the kept side of longitude `edge`."""
    result: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        px, py = points[i - 1]
        if keep(x) != keep(px):
            result.append((edge, py + (y - py) * (edge - px) / (x - px)))
        if keep(x):
            result.append((x, y))
    return result


def split_at_antimeridian(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """A ring that crosses ±180° (Russia, Fiji) jumps across the whole map: unwrap it, then cut it at both edges."""
    if all(abs(x - px) < 180 for (x, _), (px, _) in zip(points[1:], points, strict=False)):
        return [points]
    unwrapped = [points[0]]
    for x, y in points[1:]:
        px = unwrapped[-1][0]
        unwrapped.append((x + 360 * round((px - x) / 360), y))
    pieces = []
    for shift in (-360, 0, 360):
        piece = [(x + shift, y) for x, y in unwrapped]
        piece = clip(clip(piece, lambda lon: lon <= 180, 180), lambda lon: lon >= -180, -180)
        if len(piece) > 2:
            pieces.append(piece)
    return pieces


def polygons(geometry: dict[str, Any]) -> list[list[list[int]]]:
    if geometry["type"] == "Polygon":
        return [geometry["arcs"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["arcs"])
    return []


def build() -> tuple[str, str]:
    topology = json.loads(TOPOLOGY.read_text())
    alpha2 = {numeric: code for code, _alpha3, numeric, _iso in json.loads(CODES.read_text())}
    arcs = decode_arcs(topology)
    shapes: dict[str, list[list[tuple[float, float]]]] = {}
    for geometry in topology["objects"]["countries"]["geometries"]:
        code = alpha2.get(geometry.get("id", "")) or UNNUMBERED.get(geometry["properties"]["name"])
        if code is None or code in LEFT_OUT:
            continue
        for polygon in polygons(geometry):
            shapes.setdefault(code, []).extend(p for r in polygon for p in split_at_antimeridian(ring(arcs, r)))
    projected = {c: [[natural_earth(lon, lat) for lon, lat in r] for r in rings] for c, rings in shapes.items()}
    xs = [x for rings in projected.values() for r in rings for x, _ in r]
    ys = [y for rings in projected.values() for r in rings for _, y in r]
    scale = WIDTH / (max(xs) - min(xs))
    height = round((max(ys) - min(ys)) * scale, 1)

    def path(rings: list[list[tuple[float, float]]]) -> str:
        parts = []
        for r in rings:
            coords = [f"{(x - min(xs)) * scale:.1f} {(y - min(ys)) * scale:.1f}" for x, y in r]
            parts.append("M" + " ".join(coords) + "Z")
        return "".join(parts)

    body = "\n".join(f'<path id="{code}" d="{path(projected[code])}"/>' for code in sorted(projected))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {height}">\n'
        "<!-- Generated by scripts/world_map.py from world-atlas 2.0.2 countries-110m (ISC; Natural Earth, public"
        " domain) and i18n-iso-countries 7.14.0 codes (MIT); see static/vendor/README.md. -->\n"
        f'<g id="world">\n{body}\n</g>\n</svg>\n'
    )
    codes = "".join(f'        "{c}",\n' for c in sorted(projected))  # as ruff format writes it
    module = (
        '"""The countries the dashboard\'s world map draws (generated by scripts/world_map.py; do not edit)."""\n\n'
        "from typing import Final\n\n"
        f"MAP_HEIGHT: Final = {height}  # the map's viewBox is 0 0 {WIDTH:.0f} MAP_HEIGHT\n"
        f"MAP_REGIONS: Final = frozenset(\n    {{\n{codes}    }}\n)\n"
    )
    return svg, module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed files differ")
    args = parser.parse_args()
    svg, module = build()
    if args.check:
        same = SVG.read_text() == svg and REGIONS.read_text() == module
        print("world map up to date" if same else "world map out of date: run scripts/world_map.py")
        return 0 if same else 1
    SVG.write_text(svg)
    REGIONS.write_text(module)
    print(f"{SVG} ({len(svg):,} bytes), {REGIONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
