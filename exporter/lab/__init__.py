"""The loopback lab: test infrastructure shipped for ``--demo``, ``check --demo`` and ``lab``.

Rule: nothing in the exporter's production path imports this package; only the
demo and lab commands (lazily), a config file written by ``lab`` (through
``exporter.compose``), the tests and the benchmarks do. Everything here listens
on 127.0.0.1 or [::1] only and needs no privileges.

Modules: ``servers`` (the lab's DNS and web servers, ``Lab``), ``routing``
(documentation-prefix addresses to loopback endpoints), ``tls`` (a certificate
made at start), ``showcase`` (the demo's domains, one per pitfall).
"""
