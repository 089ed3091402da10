"""Kubernetes objects as the API serves them, for the discovery tests (unit and real API)."""

from __future__ import annotations

from typing import Any


def ingress(
    hosts: list[Any] | None = None,
    tls: list[Any] | None = None,
    *,
    class_name: str | None = None,
    annotations: dict[str, str] | None = None,
    namespace: str = "shop",
    name: str = "web",
) -> dict[str, Any]:
    """A networking.k8s.io/v1 Ingress: a rule per host (``/`` to service web:80), ``tls`` a
    list of host groups (one TLS entry, with its own secret, each)."""
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                        }
                    ]
                },
            }
            for host in hosts or []
        ]
    }
    if tls is not None:
        spec["tls"] = [
            {"hosts": group, "secretName": f"{name}-tls-{i}"} for i, group in enumerate(tls)
        ]
    if class_name is not None:
        spec["ingressClassName"] = class_name
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def acme_cluster_issuer(name: str = "letsencrypt") -> dict[str, Any]:
    """A cert-manager ClusterIssuer for Let's Encrypt production, with one HTTP-01 solver."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": name},
        "spec": {
            "acme": {
                "server": "https://acme-v02.api.letsencrypt.org/directory",
                "privateKeySecretRef": {"name": f"{name}-account"},
                "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
            }
        },
    }
