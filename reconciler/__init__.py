"""border0-reconciler: border0 sockets and policies as code."""

__version__ = "0.2.0"
