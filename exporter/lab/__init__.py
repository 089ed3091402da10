"""The loopback lab: test infrastructure shipped for ``--demo``, ``check --demo`` and ``lab``.

Rule: nothing in the exporter's production path imports this package; only the
demo and lab commands (lazily), a config file written by ``lab`` (through
``exporter.compose``), the tests and the benchmarks do. Everything here listens
on loopback only (127.0.0.0/8, [::1]) and needs no privileges.

Modules: ``servers`` (the lab's DNS and web servers, ``Lab``), ``routing``
(documentation-prefix addresses to loopback endpoints), ``tls`` (a certificate
made at start), ``showcase`` (the demo's domains, one per pitfall), ``dnssec``
(a signed DNS hierarchy: root, TLD, zones) and ``unbound`` (a real Unbound
resolving that hierarchy, for the resolver tests).
"""
