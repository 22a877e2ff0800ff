"""Connector processes: argv templates, the supervisor (a state table per process) and the
local connector used with `--api local`.
"""
