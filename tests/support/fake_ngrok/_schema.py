"""The fields a v3 agent knows in an endpoint or tunnel definition (agent API body or config file).

The real agent decodes a JSON body as strict YAML into Go structs, so an unknown field is a 400 naming the field
and the Go type; the tunnel types and texts are the real ones, the endpoint type names are inferred.
"""

from __future__ import annotations

ENDPOINT_TYPE = "config.v3Endpoint"
UPSTREAM_TYPE = "config.v3Upstream"
ENDPOINT_FIELDS = frozenset(
    {
        "name",
        "url",
        "description",
        "metadata",
        "bindings",
        "traffic_policy",
        "pooling_enabled",
        "upstream",
        "inspect",
        "agent_tls_termination",
    }
)
UPSTREAM_FIELDS = frozenset({"url", "protocol", "proxy_protocol"})

_COMMON = frozenset({"addr", "proto", "name", "metadata", "description", "inspect", "labels", "pooling_enabled"})
_HTTP = _COMMON | {
    "basic_auth",
    "circuit_breaker",
    "compression",
    "crt",
    "domain",
    "host_header",
    "hostname",
    "ip_restriction",
    "key",
    "mutual_tls_cas",
    "oauth",
    "oidc",
    "policy",
    "request_header",
    "response_header",
    "schemes",
    "subdomain",
    "traffic_policy",
    "user_agent_filter",
    "verify_webhook",
    "webhook_verification",
    "websocket_tcp_converter",
}
_TCP = _COMMON | {"ip_restriction", "policy", "proxy_proto", "remote_addr", "traffic_policy"}
_TLS = _COMMON | {
    "crt",
    "domain",
    "hostname",
    "ip_restriction",
    "key",
    "mutual_tls_cas",
    "policy",
    "proxy_proto",
    "subdomain",
    "terminate_at",
    "traffic_policy",
}
# proto -> (known fields, the Go type ngrok names). `auth` and `bind_tls` are v2-agent only: pyngrok renames them.
TUNNEL_FIELDS = {
    "http": (_HTTP, "config.HTTPv2Tunnel"),
    "tcp": (_TCP, "config.TCPv2Tunnel"),
    "tls": (_TLS, "config.TLSv2Tunnel"),
}
