"""A border0-compatible API server on SQLite, with fault injection, for local use and tests.

    store.py        sockets, policies, attachments, connectors and their tokens in SQLite
                    (transaction.py: its unit of work)
    rules.py        border0's rules for socket and policy bodies; what answers show of secrets
    upstream.py     upstream configurations checked with the SDK's rules (generated schema)
    contract.py     is a request one border0 knows? (reference_requests.json + allowlist.py)
    allowlist.py    what border0's own tools send beyond the reference OpenAPI copy, with sources
    guard.py        token before body, 1 MB limit, the request contract (ASGI middleware)
    staleness.py    reads as a lagging replica answers them (--read-after-write-delay)
    models.py       pydantic models: the published OpenAPI document
    app.py          the FastAPI routes under /api/v1 (`create_app`)
    faults.py       latency, failures and rate limiting as ASGI middleware
    embedded.py     uvicorn in a thread on a free loopback port (`EmbeddedEmulator`)
    server.py       the `border0-reconciler emulator` process
"""

from reconciler.border0.emulator.app import API_PREFIX, create_app
from reconciler.border0.emulator.embedded import EmbeddedEmulator
from reconciler.border0.emulator.store import Store

__all__ = ["API_PREFIX", "EmbeddedEmulator", "Store", "create_app"]
