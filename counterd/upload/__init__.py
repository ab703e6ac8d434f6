"""Hourly CSV.GZ reports for the central CCTV GCC API service, store-and-forward.

`report` builds one hour's file from the counts store, `outbox` keeps it durably on disk until
the service has it, `sender` makes one upload and says what its answer means, and `uploader`
runs them on the daemon's event loop (hourly job, start-up backfill, retries).
The report's columns and warning codes are the service's contract, in counterd/report_schema.py
(counterd.config validates [upload] against it without importing this package).
"""
