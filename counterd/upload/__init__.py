"""Hourly CSV.GZ reports for the central CCTV GCC API service, store-and-forward.

`report` builds one hour's file from the counts store, `outbox` keeps it durably on disk until
the service has it, `sender` makes one upload and says what its answer means, and `uploader`
runs them on the daemon's event loop (hourly job, start-up backfill, retries).

This module imports nothing heavy: counterd.config reads `schema` from here.
"""
