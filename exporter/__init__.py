"""acme-http01-exporter: predicts Let's Encrypt HTTP-01 validation outcomes.

Let's Encrypt dials a domain's first AAAA address first, falls back to its
first A address only when that dial fails and only for the initial host, and
re-resolves every redirect hop preferring IPv6 with no fallback of its own.
This package reproduces those rules (``policy``), runs them against real DNS
and web servers (``http01``), and exports the results to Prometheus.
"""

__version__ = "0.1.0"
