"""border0's connector endpoints (border0-go client/connector.go) and a socket's typed
upstream (client/socket.go SocketUpstreamConfigs), as methods of `Border0Client`: a mixin that
speaks through the client's `_json`, `_create` and `_delete`, so the one retry policy and error
mapping apply."""

from __future__ import annotations

from typing import Any

__all__ = ["ConnectorEndpoints"]


def path_segment(value: str) -> str:
    from reconciler.border0.client import path_segment as seg  # the client's one path quoting

    return seg(value)


class ConnectorEndpoints:
    """Needs the client's `_json`, `_create` and `_delete`."""

    _json: Any
    _create: Any
    _delete: Any

    def get_upstream_configuration(self, socket_id: str) -> dict | None:
        """The socket's upstream_configuration from `/socket/{id}/upstream_configurations`
        (border0-go client/socket.go SocketUpstreamConfigs; the provider reads it there)."""
        data = self._json("GET", f"/socket/{path_segment(socket_id)}/upstream_configurations")
        items = data.get("list") if isinstance(data, dict) else data
        for item in items or ():
            if isinstance(item, dict) and isinstance(item.get("config"), dict):
                return item["config"]
        return None

    # --- connectors (border0-go client/connector.go) --------------------------------------

    def list_all_connectors(self) -> list[dict]:
        """Every connector of the organization (`GET /connectors`: `{"list": [...]}` as the
        SDK's Connectors decodes it; a bare array is accepted too)."""
        data = self._json("GET", "/connectors")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def get_connector(self, connector_id: str) -> dict:
        return self._json("GET", f"/connector/{path_segment(connector_id)}")

    def find_connector(self, name: str) -> dict | None:
        """A connector by name (border0 has no lookup by name: the list is searched)."""
        return next((c for c in self.list_all_connectors() if c.get("name") == name), None)

    def create_connector(self, body: dict) -> dict:
        return self._create("/connector", body)

    def update_connector(self, connector_id: str, body: dict) -> dict:
        """`PUT /connector` with the id in the body (SDK UpdateConnector)."""
        return self._json("PUT", "/connector", body={**body, "connector_id": connector_id})

    def delete_connector(self, connector_id: str) -> None:
        self._delete(f"/connector/{path_segment(connector_id)}")

    def list_connector_tokens(self, connector_id: str) -> list[dict]:
        data = self._json("GET", f"/connector/{path_segment(connector_id)}/tokens")
        return list(data.get("list") or []) if isinstance(data, dict) else list(data or [])

    def create_connector_token(self, body: dict) -> dict:
        """`POST /connector/token`: the only answer that holds the token's value. Not retried
        by name on an ambiguous failure: a second token is harmless, a lost value is not."""
        return self._json("POST", "/connector/token", body=body)

    def delete_connector_token(self, connector_id: str, token_id: str) -> None:
        self._delete(f"/connector/{path_segment(connector_id)}/token/{path_segment(token_id)}")
