// The shipped rules and dashboard, as the rest of the mixin reads them: rules.yaml and
// dashboard.json here are byte-identical copies of grafana/rules.yaml and
// grafana/dashboard.json (tests/integration/test_mixin.py checks it).
local rules = std.parseYaml(importstr 'rules.yaml');
local dashboard = import 'dashboard.json';

// The selector every series every rule reads carries in rules.yaml: the string _config.selector
// replaces.
local selector = 'job="acme-http01-exporter"';
local alerts = [rule for group in rules.groups for rule in group.rules if std.objectHas(rule, 'alert')];
// The runbook every runbook_url of rules.yaml points into (the part before `#`).
local runbookBaseUrl = std.split(alerts[0].annotations.runbook_url, '#')[0];

assert std.all([std.length(std.findSubstr(selector, rule.expr)) > 0 for group in rules.groups for rule in group.rules])
       : 'a rule of rules.yaml lacks the selector ' + selector;
assert std.all([rule.annotations.runbook_url == runbookBaseUrl + '#' + std.asciiLower(rule.alert) for rule in alerts])
       : 'a runbook_url of rules.yaml is not ' + runbookBaseUrl + '#<alert in lower case>';

{
  groups: rules.groups,
  dashboard: dashboard,
  selector: selector,
  runbookBaseUrl: runbookBaseUrl,
}
