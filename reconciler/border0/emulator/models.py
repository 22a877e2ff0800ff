"""Pydantic models of what the emulator accepts and answers: they make its OpenAPI document.

Requests are checked before they reach these models, field by field, against border0's request
schemas (guard.py, contract.py); the request models describe what passes. Response models
describe the JSON the store produces, and the schemathesis test checks that they agree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Action",
    "Actions",
    "Connector",
    "ConnectorBody",
    "ConnectorConfig",
    "ConnectorList",
    "ConnectorToken",
    "ConnectorTokenBody",
    "ConnectorTokens",
    "Connectors",
    "DataConsistency",
    "Error",
    "Pagination",
    "Policy",
    "PolicyCreate",
    "PolicyUpdate",
    "ServerInfo",
    "SlimConnector",
    "Socket",
    "SocketConnector",
    "SocketCreate",
    "SocketPage",
    "SocketPolicy",
    "SocketUpdate",
    "UpstreamConfig",
    "UpstreamConfigs",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _SocketFields(_In):
    display_name: str | None = None
    description: str | None = None
    upstream_type: str | None = None
    upstream_http_hostname: str | None = None
    upstream_username: str | None = None
    upstream_password: str | None = None
    upstream_key: str | None = None
    upstream_cert: str | None = None
    upstream_ca: str | None = None
    protected_socket: bool | None = None
    protected_username: str | None = None
    protected_password: str | None = None
    recording_enabled: bool | None = None
    tags: dict[str, str] | None = None
    connector_ids: list[str] | None = None
    upstream_configuration: dict[str, Any] | None = None
    cloud_authentication_enabled: bool | None = None
    cloud_authentication_email_allowed_addressses: list[str] | None = None
    cloud_authentication_email_allowed_domains: list[str] | None = None
    connector_authentication_enabled: bool | None = None


class SocketCreate(_SocketFields):
    """POST /socket. `socket_type` https is stored as http with upstream_type https."""

    name: str
    socket_type: str
    cloud_authentication_email_allowed_addresses: list[str] | None = None
    policy_names: list[str] | None = Field(None, description="policies to attach (CLI)")


class SocketUpdate(_SocketFields):
    """PUT /socket/{idOrName}: the fields given replace the stored ones."""

    name: str | None = None
    socket_type: str | None = None


class SocketPolicy(BaseModel):
    """A policy as embedded in a socket's `policies` (without `socket_ids`)."""

    id: str
    name: str
    version: str = Field(description='"v1" or "v2"')
    description: str
    org_id: str
    org_wide: bool
    policy_data: dict[str, Any]
    created_at: str
    updated_at: str
    deleted: bool
    tag_rules: list[dict[str, str]]


class Policy(SocketPolicy):
    socket_ids: list[str]


class SlimConnector(BaseModel):
    """serializer.SlimConnector: a link as a socket answer shows it."""

    connector_id: str
    name: str


class Socket(BaseModel):
    """serializer.Socket in the reference: links as `connectors`, no `connector_ids`,
    `upstream_configuration` or `display_name` (read those from the sub-resources)."""

    socket_id: str
    name: str
    socket_type: str
    description: str
    upstream_type: str
    upstream_http_hostname: str
    upstream_username: str
    upstream_password: str | None = Field(None, description="absent unless --secrets-on-read")
    upstream_key: str | None = Field(None, description="absent unless --secrets-on-read")
    upstream_cert: str = ""
    upstream_ca: str = ""
    protected_socket: bool
    protected_username: str
    protected_password: str | None = Field(None, description="absent unless --secrets-on-read")
    recording_enabled: bool
    tags: dict[str, str]
    connectors: list[SlimConnector]
    alive: bool
    connector_managed: bool
    connector_authentication_enabled: bool
    end_to_end_encryption_enabled: bool
    private_socket: bool
    cloud_authentication_enabled: bool
    cloud_authentication_email_allowed_addressses: list[str]
    cloud_authentication_email_allowed_domains: list[str]
    dnsname: str
    socket_tcp_ports: list[int]
    policies: list[SocketPolicy]
    created_at: str
    updated_at: str


class Pagination(BaseModel):
    current_page: int
    next_page: int = Field(description="the next page to ask for; 0 or less: this is the last")
    total_records: int
    total_pages: int
    records_per_page: int
    actual_page_size: int


class SocketPage(BaseModel):
    list: list[Socket]
    pagination: Pagination


class PolicyCreate(_In):
    name: str
    description: str | None = None
    policy_data: dict[str, Any] | None = None
    org_wide: bool | None = None
    version: Literal["", "v1", "v2"] | None = None
    tag_rules: list[dict[str, str]] | None = None


class PolicyUpdate(_In):
    """PUT /policy/{id}: name, description, policy_data, version, tag_rules replace;
    `org_wide` is kept (as border0 does)."""

    name: str | None = None
    description: str | None = None
    policy_data: dict[str, Any] | None = None
    version: Literal["", "v1", "v2"] | None = None
    tag_rules: list[dict[str, str]] | None = None


class Action(_In):
    action: Literal["add", "remove"]
    id: str


class Actions(_In):
    actions: list[Action]


class SocketConnector(BaseModel):
    """SDK SocketConnector (border0-go client/socket.go)."""

    id: int
    connector_id: str
    connector_name: str
    socket_id: str
    created_at: str
    updated_at: str


class ConnectorList(BaseModel):
    list: list[SocketConnector]


class UpstreamConfig(BaseModel):
    """SDK SocketUpstreamConfig: `config` is a types/service Configuration, credentials in."""

    config: dict[str, Any]
    created_at: str
    updated_at: str


class UpstreamConfigs(BaseModel):
    list: list[UpstreamConfig]


class ConnectorBody(_In):
    """POST/PUT /connector: SDK Connector (client/connector.go). PUT names the connector by
    `connector_id` in the body; `description` and `built_in_ssh_service_enabled` not sent
    are reset (omitempty in the SDK)."""

    name: str
    description: str | None = None
    connector_id: str | None = None
    built_in_ssh_service_enabled: bool | None = None


class Connector(BaseModel):
    connector_id: str
    name: str
    description: str
    built_in_ssh_service_enabled: bool
    created_at: str
    updated_at: str


class Connectors(BaseModel):
    """GET /connectors: SDK Connectors {list} (the SDK decodes an object, not an array)."""

    list: list[Connector]


class ConnectorTokenBody(_In):
    connector_id: str
    name: str
    expires_at: int | None = Field(None, description="Unix seconds (border0's clients send a "
                                   "number); absent or 0: never expires")


class ConnectorToken(BaseModel):
    """SDK ConnectorToken; `token` (the value) only in the answer to its creation."""

    id: str
    connector_id: str
    name: str
    expires_at: str | None = Field(None, description="RFC 3339; absent: never expires")
    created_by: str
    created_at: str
    token: str | None = Field(None, description="the token's value: answered once, at creation")


class ConnectorTokens(BaseModel):
    list: list[ConnectorToken]
    connector: Connector


class SocketConfig(BaseModel):
    id: str
    name: str
    type: str
    config: dict[str, Any]


class ConnectorConfig(BaseModel):
    """The twin's read for a test stand-in connector (border0-proto connector.proto Init)."""

    connector_config: Connector
    sockets: list[SocketConfig]


class DataConsistency(BaseModel):
    rx_after_tx_delay_ms: int


class ServerInfo(BaseModel):
    data_consistency: DataConsistency


class SignKey(_In):
    """SDK SocketKeyToSign (client/socket.go SignSocketKey)."""

    ssh_public_key: str


class Error(BaseModel):
    status_code: int
    error_message: str
