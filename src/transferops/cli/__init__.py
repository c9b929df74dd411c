"""Thin command-line layer over the Python API (``transferops <command> ...``)."""
