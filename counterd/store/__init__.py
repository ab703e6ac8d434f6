"""Counts store: SQLite (WAL) of crossing events, 1-minute bins and coverage; see store.py."""
from counterd.store.aio import AsyncStore
from counterd.store.alerts import Alert, AlertRules
from counterd.store.live import LiveTotals
from counterd.store.store import DayBins, Pruned, Store

__all__ = ["Alert", "AlertRules", "AsyncStore", "DayBins", "LiveTotals", "Pruned", "Store"]
