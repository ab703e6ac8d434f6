"""The Axis export formats (CSV, JSON, XML) of a table of local-time bins, byte-for-byte as the
spec's examples: CSV gives both bin ends, JSON keys and XML endtime are bin END times; all local."""
from __future__ import annotations

import json
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from counterd.config.fields import xml_safe
from counterd.store.wallclock import format_wall

PEOPLE_TYPES = ((3, "Pedestrians coming in"), (4, "Pedestrians going out"))
OCCUPANCY_TYPES = ((64, "Occupancy"), (65, "Average Time"), (66, "Total In"), (67, "Total Out"))

APPDATA_DTD = """\
<!-- counterd's reading of the AXIS People Counter export-xml document (spec: axis-tvpc.md) -->
<!ELEMENT countdata (typedesc, cntset*)>
<!ATTLIST countdata version CDATA #REQUIRED>
<!ELEMENT typedesc (type*)>
<!ELEMENT type (#PCDATA)>
<!ATTLIST type typeid CDATA #REQUIRED>
<!ELEMENT cntset (cntgroup*)>
<!ATTLIST cntset name CDATA #REQUIRED
                 date CDATA #REQUIRED
                 starttime CDATA #REQUIRED
                 delta CDATA #REQUIRED>
<!ELEMENT cntgroup (cnt*)>
<!ATTLIST cntgroup endtime CDATA #REQUIRED
                   time CDATA #REQUIRED>
<!ELEMENT cnt (#PCDATA)>
<!ATTLIST cnt typeid CDATA #REQUIRED>
"""


@dataclass(frozen=True)
class Row:
    start: int                      # wall epoch (local time read as UTC)
    end: int
    values: tuple[int, ...]         # in the order of the table's types


@dataclass(frozen=True)
class Table:
    name: str
    serial: str
    delta: int                      # bin length in seconds
    types: tuple[tuple[int, str], ...]
    days: tuple[tuple[int, tuple[Row, ...]], ...]   # (wall midnight, rows), oldest first


class Writer:
    """A format written in parts, so an export of any length streams in bounded memory:
    begin() once, part(table) for each run of days (oldest first), end() once. Every part shares
    the first table's name, serial, delta and types."""

    def __init__(self, table: Table):
        self.table = table

    def begin(self) -> str:
        return ""

    def part(self, table: Table) -> str:
        raise NotImplementedError

    def end(self) -> str:
        return ""

    def whole(self) -> str:
        return self.begin() + self.part(self.table) + self.end()


class CsvWriter(Writer):
    def __init__(self, table: Table):
        super().__init__(table)
        self.prefix = f"{csv_field(table.serial)},{csv_field(table.name)}"
        self.stamp = Stamps("%Y-%m-%d", " {h:02d}:{m:02d}:{s:02d}")

    def begin(self) -> str:
        return ",".join(["Interval start", "Interval stop", "Camera serial number", "Counter name",
                         *(name for _, name in self.table.types)]) + "\n"

    def part(self, table: Table) -> str:
        stamp, prefix = self.stamp, self.prefix
        return "".join(f"{stamp(row.start)},{stamp(row.end)},{prefix}," + ",".join(map(str, row.values)) + "\n"
                       for _, rows in table.days for row in rows)


def to_csv(table: Table) -> str:
    return CsvWriter(table).whole()


class Stamps:
    """Wall times formatted as date_fmt (strftime) + time_fmt (str.format of h, m, s), with the
    date part made once per day: a year's export formats 70 000 times."""

    def __init__(self, date_fmt: str, time_fmt: str):
        self.date_fmt, self.time_fmt = date_fmt, time_fmt
        self.days: dict[int, str] = {}

    def __call__(self, wall: int) -> str:
        day, seconds = divmod(wall, 86400)
        text = self.days.get(day)
        if text is None:
            text = self.days[day] = format_wall(day * 86400, self.date_fmt)
        return text + self.time_fmt.format(h=seconds // 3600, m=seconds // 60 % 60, s=seconds % 60)


def csv_field(text: str) -> str:
    """Fields are never quoted by Axis; quote only what would otherwise break the row."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class DataEntries:
    """The "data" object of a JSON export written in parts: '"key":value' entries joined by
    commas across parts; begin() and end() open and close the document around it."""

    def __init__(self):
        self.first = True

    def join(self, entries: list[str]) -> str:
        if not entries:
            return ""
        text = ("" if self.first else ",") + ",".join(entries)
        self.first = False
        return text

    @staticmethod
    def begin(counter: dict) -> str:
        return '{"counter":' + compact_json(counter) + ',"data":{'

    @staticmethod
    def end() -> str:
        return "}}"


class JsonWriter(Writer):
    """The same bytes as compact_json of the whole document: "data" is its last key."""

    def __init__(self, table: Table):
        super().__init__(table)
        self.stamp = Stamps("%Y%m%d", "{h:02d}{m:02d}{s:02d}")
        self.data = DataEntries()

    def begin(self) -> str:
        t = self.table
        counter = {"name": t.name, "serial": t.serial, "delta": t.delta,
                   "types": {name: typeid for typeid, name in t.types}}
        return self.data.begin(counter)

    def part(self, table: Table) -> str:
        return self.data.join([f'"{self.stamp(row.end)}":[{",".join(map(str, row.values))}]'
                               for _, rows in table.days for row in rows])

    def end(self) -> str:
        return self.data.end()


def to_json(table: Table) -> str:
    return JsonWriter(table).whole()


class XmlWriter(Writer):
    """Text goes through xml_safe as well as escaping: a name holding a character XML cannot
    carry (U+FFFF, a control character) would make the whole document ill-formed."""

    def begin(self) -> str:
        return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>',
                          '<!DOCTYPE countdata SYSTEM "appdata.dtd">',
                          '<countdata version="1">',
                          "  <typedesc>" + "".join(f'<type typeid="{typeid}">{escape(xml_safe(name))}</type>'
                                                   for typeid, name in self.table.types) + "</typedesc>"]) + "\n"

    def part(self, table: Table) -> str:
        out = []
        name = quoteattr(xml_safe(table.name))
        for day, rows in table.days:
            out.append(f"  <cntset name={name} date=\"{format_wall(day, '%Y-%m-%d')}\" "
                       f'starttime="{day}" delta="{table.delta}">')
            for row in rows:
                cnts = "".join(f'<cnt typeid="{typeid}">{value}</cnt>'
                               for (typeid, _), value in zip(table.types, row.values))
                out.append(f'    <cntgroup endtime="{row.end}" time="{format_wall(row.end, "%H:%M")}">'
                           f"{cnts}</cntgroup>")
            out.append("  </cntset>")
        return "".join(line + "\n" for line in out)

    def end(self) -> str:
        return "</countdata>\n"


def to_xml(table: Table) -> str:
    return XmlWriter(table).whole()


def compact_json(doc) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


RENDERERS = {
    "csv": (to_csv, "text/csv"),
    "json": (to_json, "application/json"),
    "xml": (to_xml, "application/xml"),
}
WRITERS = {"csv": CsvWriter, "json": JsonWriter, "xml": XmlWriter}
