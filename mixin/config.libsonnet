local source = import 'source.libsonnet';

{
  _config+:: {
    // PromQL label matchers of the job that scrapes the exporter's /metrics, in every series
    // every rule reads (recording rules included) and in the annotations' queries. Series of
    // any other job (a blackbox-style /probe job) never count, present or absent.
    // Default: job="acme-http01-exporter".
    selector: source.selector,

    // Each alert's runbook_url is '<runbookBaseUrl>#<alert name in lower case>'. Default: the
    // runbook (exporter/runbook.md) in the project's repository, on its main branch.
    runbookBaseUrl: source.runbookBaseUrl,

    // Grafana's base URL (e.g. 'https://grafana.example.org'): when set, each alert gets a
    // dashboard_url to the dashboard (per-domain alerts: on their domain). Default: none.
    dashboardBaseUrl: '',
  },
}
