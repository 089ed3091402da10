local source = import 'source.libsonnet';

{
  // The dashboard (uid acme-http01) as grafana/dashboard.py generates it. It selects its
  // series with its own variables ($cluster, $job, $perspective, $instance, $domain, all but
  // $domain "All" by default), not with _config.selector.
  grafanaDashboards+:: {
    'acme-http01-exporter.json': source.dashboard,
  },
}
