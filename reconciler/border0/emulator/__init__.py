"""A border0-compatible API server on SQLite, with fault injection, for local use and tests.

    store.py     sockets, policies, attachments in SQLite; border0's rules
    models.py    pydantic models: the published OpenAPI document
    app.py       the FastAPI routes under /api/v1 (`create_app`)
    faults.py    latency, failures and rate limiting as ASGI middleware
    embedded.py  uvicorn in a thread on a free loopback port (`EmbeddedEmulator`)
    server.py    the `border0-reconciler emulator` process
"""

from reconciler.border0.emulator.app import API_PREFIX, create_app
from reconciler.border0.emulator.embedded import EmbeddedEmulator
from reconciler.border0.emulator.store import Store

__all__ = ["API_PREFIX", "EmbeddedEmulator", "Store", "create_app"]
