"""PostgreSQL format model: pages, tuples, checksums, WAL records, resource managers and redo.

Knows nothing of the walredo protocol; the reference server and the strategies build on it.
"""
