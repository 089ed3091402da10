local source = import 'source.libsonnet';

local selected(text, config) = std.strReplace(text, source.selector, config.selector);

local alert(rule, config) = rule {
  expr: selected(rule.expr, config),
  annotations: {
    [key]:
      if key == 'runbook_url'
      then '%s#%s' % [config.runbookBaseUrl, std.asciiLower(rule.alert)]
      else selected(rule.annotations[key], config)
    for key in std.objectFields(rule.annotations)
  } + (
    if config.dashboardBaseUrl == '' then {}
    else {
      local url = '%s/d/%s/acme-http01-exporter' % [
        std.rstripChars(config.dashboardBaseUrl, '/'),
        source.dashboard.uid,
      ],
      // Per-domain alerts open the dashboard on their domain.
      dashboard_url:
        if std.length(std.findSubstr('$labels.domain', rule.annotations.summary)) > 0
        then url + '?var-domain={{ $labels.domain }}'
        else url,
    }
  ),
};

{
  // The groups of rules.yaml that hold alerts, with _config applied.
  prometheusAlerts+:: {
    groups+: [
      group { rules: [alert(rule, $._config) for rule in group.rules] }
      for group in source.groups
      if std.any([std.objectHas(rule, 'alert') for rule in group.rules])
    ],
  },
}
