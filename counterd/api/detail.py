"""export-detail-csv and export-detail-json: every line and class per bin with the seconds of
video analysed, under the Axis paths for clients that speak them (spec section 5: beyond-Axis
counts get their own commands; the Axis formats themselves never change).

Every bin of a day with data has a row (or entry) for every configured line and counted class,
zeros included, plus any other line or class found in the data."""
from __future__ import annotations

from counterd.api.formats import DataEntries, Stamps, csv_field, compact_json
from counterd.config import Config
from counterd.store import DayBins

HEADER = ("Interval start,Interval stop,Camera serial number,Counter name,Line,Class,"
          "Coming in,Going out,Analysed seconds")


def axes(config: Config, found: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The configured lines and classes, then any other (line, class) found in the data."""
    lines = [line.name for line in config.lines]
    classes = list(config.detector.classes)
    for line, class_name in found:
        if line not in lines:
            lines.append(line)
        if class_name not in classes:
            classes.append(class_name)
    return lines, classes


class DetailWriter:
    """Written in parts like formats.Writer: begin(), part(days) per run of days, end()."""

    def __init__(self, res: int, config: Config, serial: str, found: list[tuple[str, str]]):
        self.res, self.config, self.serial = res, config, serial
        self.lines, self.classes = axes(config, found)

    def begin(self) -> str:
        return ""

    def end(self) -> str:
        return ""


class DetailCsv(DetailWriter):
    def __init__(self, *args):
        super().__init__(*args)
        self.prefix = f"{csv_field(self.serial)},{csv_field(self.config.camera.name)}"
        self.stamp = Stamps("%Y-%m-%d", " {h:02d}:{m:02d}:{s:02d}")

    def begin(self) -> str:
        return HEADER + "\n"

    def part(self, days: list[DayBins]) -> str:
        out = []
        res, stamp = self.res, self.stamp
        for day in days:
            for s in day.starts:
                head = f"{stamp(s)},{stamp(s + res)},{self.prefix}"
                coverage = round(day.coverage.get(s, 0.0), 1)
                for line in self.lines:
                    for cls in self.classes:
                        out.append(f"{head},{csv_field(line)},{cls},{day.count(s, line, 'in', cls)},"
                                   f"{day.count(s, line, 'out', cls)},{coverage:g}\n")
        return "".join(out)


class DetailJson(DetailWriter):
    """{"counter": {...}, "data": {"<bin end>": {"coverage": s, "counts": {line: {class: [in, out]}}}}}"""

    def __init__(self, *args):
        super().__init__(*args)
        self.stamp = Stamps("%Y%m%d", "{h:02d}{m:02d}{s:02d}")
        self.data = DataEntries()

    def begin(self) -> str:
        counter = {"name": self.config.camera.name, "serial": self.serial, "delta": self.res,
                   "lines": self.lines, "classes": self.classes}
        return self.data.begin(counter)

    def part(self, days: list[DayBins]) -> str:
        entries = []
        for day in days:
            for s in day.starts:
                entry = {"coverage": round(day.coverage.get(s, 0.0), 1),
                         "counts": {line: {cls: [day.count(s, line, "in", cls), day.count(s, line, "out", cls)]
                                           for cls in self.classes} for line in self.lines}}
                entries.append(f'"{self.stamp(s + self.res)}":{compact_json(entry)}')
        return self.data.join(entries)

    def end(self) -> str:
        return self.data.end()
