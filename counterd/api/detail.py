"""export-detail-csv and export-detail-json: every line and class per bin with the seconds of
video analysed, under the Axis paths for clients that speak them (spec section 5: beyond-Axis
counts get their own commands; the Axis formats themselves never change).

Every bin of a day with data has a row (or entry) for every configured line and counted class,
zeros included, plus any other line or class found in the data."""
from __future__ import annotations

from counterd.api.formats import Stamps, csv_field, compact_json
from counterd.config import Config
from counterd.store import DayBins

HEADER = ("Interval start,Interval stop,Camera serial number,Counter name,Line,Class,"
          "Coming in,Going out,Analysed seconds")


def _axes(config: Config, days: list[DayBins]) -> tuple[list[str], list[str]]:
    lines = [line.name for line in config.lines]
    classes = list(config.detector.classes)
    for day in days:
        for _, line, _, class_name in day.counts:
            if line not in lines:
                lines.append(line)
            if class_name not in classes:
                classes.append(class_name)
    return lines, classes


def detail_csv(days: list[DayBins], res: int, config: Config, serial: str) -> str:
    lines, classes = _axes(config, days)
    prefix = f"{csv_field(serial)},{csv_field(config.camera.name)}"
    stamp = Stamps("%Y-%m-%d", " {h:02d}:{m:02d}:{s:02d}")
    out = [HEADER]
    for day in days:
        for s in day.starts:
            head = f"{stamp(s)},{stamp(s + res)},{prefix}"
            coverage = round(day.coverage.get(s, 0.0), 1)
            for line in lines:
                for cls in classes:
                    out.append(f"{head},{csv_field(line)},{cls},{day.count(s, line, 'in', cls)},"
                               f"{day.count(s, line, 'out', cls)},{coverage:g}")
    return "\n".join(out) + "\n"


def detail_json(days: list[DayBins], res: int, config: Config, serial: str) -> str:
    """{"counter": {...}, "data": {"<bin end>": {"coverage": s, "counts": {line: {class: [in, out]}}}}}"""
    lines, classes = _axes(config, days)
    stamp = Stamps("%Y%m%d", "{h:02d}{m:02d}{s:02d}")
    data = {}
    for day in days:
        for s in day.starts:
            data[stamp(s + res)] = {
                "coverage": round(day.coverage.get(s, 0.0), 1),
                "counts": {line: {cls: [day.count(s, line, "in", cls), day.count(s, line, "out", cls)]
                                  for cls in classes} for line in lines}}
    return compact_json({"counter": {"name": config.camera.name, "serial": serial, "delta": res,
                                     "lines": lines, "classes": classes}, "data": data})
