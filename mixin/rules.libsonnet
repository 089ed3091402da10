local source = import 'source.libsonnet';

{
  // The groups of rules.yaml that hold only recording rules, with _config's selector.
  prometheusRules+:: {
    groups+: [
      group {
        rules: [
          rule { expr: std.strReplace(rule.expr, source.selector, $._config.selector) }
          for rule in group.rules
        ],
      }
      for group in source.groups
      if !std.any([std.objectHas(rule, 'alert') for rule in group.rules])
    ],
  },
}
