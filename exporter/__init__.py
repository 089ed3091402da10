"""acme-http01-exporter: predicts Let's Encrypt HTTP-01 validation outcomes.

Let's Encrypt dials a domain's first AAAA address first, falls back to its
first A address only when that dial fails and only for the initial host, and
re-resolves every redirect hop preferring IPv6 with no fallback of its own.
This package reproduces those rules (``policy``), runs them against real DNS
and web servers (``http01``), and exports the results to Prometheus.

The modules, one line each, in the order data flows through them:

Configuration and names
    ``config``        the YAML file: one frozen Config (every default, every range) or an error
    ``names``         domain names as Let's Encrypt reads them; the names it never issues for
    ``compose``       a Config becomes the engine (validator, resolver, dialer): one Bundle
Where names come from (``discovery``)
    ``discovery.files``       files of names, read with Prometheus' file_sd semantics
    ``discovery.kubernetes``  Ingresses, Certificates, HTTPRoutes: listed, then watched
    ``discovery.kinds``       which names each Kubernetes object puts up (pure)
    ``discovery.manager``     the running sources, their changes coalesced
    ``discovery.status``      each source's up, objects, names, errors
The schedule
    ``shard``         which replica validates which name (rendezvous hashing)
    ``scheduler``     one job per domain, spread by jitter, bounded concurrency
Let's Encrypt's rules (pure: no I/O)
    ``policy``        address choice, fallback, redirects, verdicts and their exact texts
    ``caa``           the CAA check
    ``iana``          the special-purpose address registries Let's Encrypt filters with
    ``gocompat``      Go standard-library behaviour the texts depend on
    ``records``       the result records: the one output of a validation
The edges (I/O, one seam each)
    ``dns``           A, AAAA and CAA lookups, as Let's Encrypt's resolver client sees them
    ``dnswire``       DNS messages (pure): the query built, the answer read, in one place
    ``dial``          one TCP connect to one chosen address
    ``fetch``         one HTTP/1.1 GET over it, its failure in Let's Encrypt's terms
    ``connection``    the request and response on that socket: TLS, h11, Go's body readers
    ``certs``         the certificate a domain serves on 443
    ``http01``        one validation, request by request, through the seams above
The service
    ``service``       the running exporter: the bundle in force, the merged names, reloads
    ``metrics``       the metrics contract, rendered at scrape time from a snapshot
    ``report``        human-readable verdicts, traces and fix hints
    ``endpoints``     the HTTP endpoints: landing page, /metrics, /probe, /domains, /discovery
    ``web``           the asyncio HTTP/1.1 server; ``webconfig`` its TLS, auth and headers
    ``markdown``      the runbook page; ``logs`` the log lines; ``resources`` own limits
    ``cli``           the command line: the service, ``check``, ``lab``
Testing only
    ``lab``           DNS and web servers on loopback with every pitfall (the demo's lab)
"""

__version__ = "0.1.0"
