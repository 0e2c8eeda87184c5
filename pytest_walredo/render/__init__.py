"""Pure views of walredo inputs and pages, as plain data and as text: :mod:`.stream` (a stream,
its WAL records and pages, like ``pytest-walredo inspect``) and :mod:`.pagediff` (two pages
field by field). Functions of bytes only: the triage CLI and the plugin's failure artifacts
both build on them.
"""
