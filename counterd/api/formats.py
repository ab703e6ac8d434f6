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


def to_csv(table: Table) -> str:
    header = ["Interval start", "Interval stop", "Camera serial number", "Counter name",
              *(name for _, name in table.types)]
    prefix = f"{csv_field(table.serial)},{csv_field(table.name)}"
    lines = [",".join(header)]
    stamp = Stamps("%Y-%m-%d", " {h:02d}:{m:02d}:{s:02d}")
    for _, rows in table.days:
        for row in rows:
            lines.append(f"{stamp(row.start)},{stamp(row.end)},{prefix}," + ",".join(map(str, row.values)))
    return "\n".join(lines) + "\n"


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


def to_json(table: Table) -> str:
    stamp = Stamps("%Y%m%d", "{h:02d}{m:02d}{s:02d}")
    data = {stamp(row.end): list(row.values) for _, rows in table.days for row in rows}
    doc = {"counter": {"name": table.name, "serial": table.serial, "delta": table.delta,
                       "types": {name: typeid for typeid, name in table.types}},
           "data": data}
    return compact_json(doc)


def to_xml(table: Table) -> str:
    """Text goes through xml_safe as well as escaping: a name holding a character XML cannot
    carry (U+FFFF, a control character) would make the whole document ill-formed."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<!DOCTYPE countdata SYSTEM "appdata.dtd">',
           '<countdata version="1">',
           "  <typedesc>" + "".join(f'<type typeid="{typeid}">{escape(xml_safe(name))}</type>'
                                    for typeid, name in table.types) + "</typedesc>"]
    for day, rows in table.days:
        out.append(f"  <cntset name={quoteattr(xml_safe(table.name))} date=\"{format_wall(day, '%Y-%m-%d')}\" "
                   f'starttime="{day}" delta="{table.delta}">')
        for row in rows:
            cnts = "".join(f'<cnt typeid="{typeid}">{value}</cnt>'
                           for (typeid, _), value in zip(table.types, row.values))
            out.append(f'    <cntgroup endtime="{row.end}" time="{format_wall(row.end, "%H:%M")}">'
                       f"{cnts}</cntgroup>")
        out.append("  </cntset>")
    out.append("</countdata>")
    return "\n".join(out) + "\n"


def compact_json(doc) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


RENDERERS = {
    "csv": (to_csv, "text/csv"),
    "json": (to_json, "application/json"),
    "xml": (to_xml, "application/xml"),
}
