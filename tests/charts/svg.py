"""Reading what matplotlib wrote: the groups draw.py names, their paths' vertices, their markers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def group(svg: str, gid: str) -> ET.Element:
    found = ET.fromstring(svg).findall(f".//{SVG}g[@id='{gid}']")
    assert len(found) == 1, f"{gid}: {len(found)} groups"
    return found[0]


def has_group(svg: str, gid: str) -> bool:
    return bool(ET.fromstring(svg).findall(f".//{SVG}g[@id='{gid}']"))


def vertices(svg: str, gid: str) -> list[tuple[float, float]]:
    """The (x, y) of each vertex of the one path in the group, in SVG coordinates (y grows downwards)."""
    paths = group(svg, gid).findall(f"{SVG}path")
    assert len(paths) == 1, f"{gid}: {len(paths)} paths"
    numbers = re.findall(r"([ML])\s*(-?[\d.]+)\s+(-?[\d.]+)", paths[0].attrib["d"])
    return [(float(x), float(y)) for _, x, y in numbers]


def markers(svg: str, gid: str) -> list[tuple[float, float]]:
    return [(float(u.attrib["x"]), float(u.attrib["y"])) for u in group(svg, gid).findall(f".//{SVG}use")]
