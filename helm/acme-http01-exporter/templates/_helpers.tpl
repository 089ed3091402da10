{{/* Chart name. */}}
{{- define "acme-http01-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name. */}}
{{- define "acme-http01-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label. */}}
{{- define "acme-http01-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "acme-http01-exporter.labels" -}}
helm.sh/chart: {{ include "acme-http01-exporter.chart" . }}
{{ include "acme-http01-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels. */}}
{{- define "acme-http01-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "acme-http01-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "acme-http01-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "acme-http01-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The job label Prometheus gives the scraped targets (the Service name by default). */}}
{{- define "acme-http01-exporter.job" -}}
{{- default (include "acme-http01-exporter.fullname" .) .Values.prometheusRule.job }}
{{- end }}

{{/* The image repository: image.repository, with its registry replaced by
     global.imageRegistry when that is set (as Bitnami charts do). The registry is the first
     path component when it has a "." or a ":" or is "localhost" (Docker's rule); a repository
     without one (Docker Hub's) gets global.imageRegistry put in front. */}}
{{- define "acme-http01-exporter.repository" -}}
{{- $repository := .Values.image.repository }}
{{- $registry := dig "imageRegistry" "" (.Values.global | default dict) | trimSuffix "/" }}
{{- if $registry }}
{{- $parts := splitList "/" $repository }}
{{- $first := first $parts }}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) }}
{{- $repository = rest $parts | join "/" }}
{{- end }}
{{- $repository = printf "%s/%s" $registry $repository }}
{{- end }}
{{- $repository }}
{{- end }}

{{/* The image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "acme-http01-exporter.image" -}}
{{- $repository := include "acme-http01-exporter.repository" . }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The scrape settings of the exporter's own endpoint, shared by the ServiceMonitor, the
     PodMonitor and the Probe (serviceMonitor.*): the scheme follows the web config's TLS;
     tlsConfig and basicAuth as serviceMonitor.tlsConfig and serviceMonitor.basicAuth say. */}}
{{- define "acme-http01-exporter.scrapeAuth" -}}
{{- if include "acme-http01-exporter.tlsEnabled" . }}
scheme: https
tlsConfig:
  {{- toYaml (.Values.serviceMonitor.tlsConfig | default (dict "insecureSkipVerify" true)) | nindent 2 }}
{{- end }}
{{- with .Values.serviceMonitor.basicAuth }}
{{- if .secretName }}
basicAuth:
  username:
    name: {{ .secretName }}
    key: {{ .usernameKey }}
  password:
    name: {{ .secretName }}
    key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* One endpoint of the ServiceMonitor or the PodMonitor (dict "context" $ "relabelings"
     <the monitor's own, before serviceMonitor.relabelings>): /metrics on the port named
     http, with the serviceMonitor.* scrape settings. */}}
{{- define "acme-http01-exporter.metricsEndpoint" -}}
{{- $ := .context }}
{{- $relabelings := concat .relabelings ($.Values.serviceMonitor.relabelings | default list) }}
port: http
path: {{ include "acme-http01-exporter.routePrefix" $ }}{{ $.Values.web.telemetryPath }}
interval: {{ $.Values.serviceMonitor.interval }}
scrapeTimeout: {{ $.Values.serviceMonitor.scrapeTimeout }}
honorLabels: {{ $.Values.serviceMonitor.honorLabels }}
{{- with include "acme-http01-exporter.scrapeAuth" $ | trim }}
{{ . }}
{{- end }}
{{- with $relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $.Values.serviceMonitor.metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The ServiceMonitor and the PodMonitor are alternatives: fail when both are on. */}}
{{- define "acme-http01-exporter.oneMonitor" -}}
{{- if and .Values.serviceMonitor.enabled .Values.podMonitor.enabled }}
{{- fail "serviceMonitor.enabled and podMonitor.enabled are alternatives: set one of them (the PodMonitor takes its settings from serviceMonitor.*)" }}
{{- end }}
{{- end }}

{{/* Where the web config and the TLS material are mounted (inside the config volume). */}}
{{- define "acme-http01-exporter.webConfigFile" -}}
/etc/acme-http01-exporter/web/web-config.yml
{{- end }}
{{- define "acme-http01-exporter.tlsDir" -}}
/etc/acme-http01-exporter/tls
{{- end }}

{{/* "true" when the exporter gets a web config file, else empty. */}}
{{- define "acme-http01-exporter.webConfigEnabled" -}}
{{- if or .Values.webConfig.config .Values.webConfig.existingSecret .Values.webConfig.tls.existingSecret }}true{{ end }}
{{- end }}

{{/* "true" when the exporter serves HTTPS, else empty: as with exporter-toolkit, when
     tls_server_config names a certificate (a file, or inline), which the TLS Secret does. */}}
{{- define "acme-http01-exporter.tlsEnabled" -}}
{{- $tls := dig "tls_server_config" dict .Values.webConfig.config }}
{{- if or .Values.webConfig.tls.existingSecret $tls.cert_file $tls.cert }}true{{ end }}
{{- end }}

{{/* The client_auth_type of the chart's web config (empty: none, or unknown). */}}
{{- define "acme-http01-exporter.clientAuthType" -}}
{{- dig "tls_server_config" "client_auth_type" "" .Values.webConfig.config }}
{{- end }}

{{/* The web config the chart writes: webConfig.config, with the paths of the mounted TLS
     Secret's files where tls_server_config does not name its own. */}}
{{- define "acme-http01-exporter.webConfig" -}}
{{- $config := deepCopy .Values.webConfig.config }}
{{- if .Values.webConfig.tls.existingSecret }}
{{- $dir := include "acme-http01-exporter.tlsDir" . }}
{{- $tls := deepCopy (default (dict) $config.tls_server_config) }}
{{- if not (or $tls.cert_file $tls.cert) }}{{ $_ := set $tls "cert_file" (printf "%s/tls.crt" $dir) }}{{ end }}
{{- if not (or $tls.key_file $tls.key) }}{{ $_ := set $tls "key_file" (printf "%s/tls.key" $dir) }}{{ end }}
{{- if and (not (or $tls.client_ca_file $tls.client_ca)) $tls.client_auth_type (ne $tls.client_auth_type "NoClientCert") }}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" $dir) }}
{{- end }}
{{- $_ := set $config "tls_server_config" $tls }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* "true" when the chart's web config's client CA is the TLS Secret's ca.crt. */}}
{{- define "acme-http01-exporter.tlsSecretCA" -}}
{{- $tls := (include "acme-http01-exporter.webConfig" . | fromYaml).tls_server_config | default dict }}
{{- if eq (toString $tls.client_ca_file) (printf "%s/ca.crt" (include "acme-http01-exporter.tlsDir" .)) }}true{{ end }}
{{- end }}

{{/* A probe of the exporter (dict "probe" <the probe value> "context" $): an httpGet probe
     follows the web config (see values.yaml: webConfig.probes); other handlers are kept. */}}
{{- define "acme-http01-exporter.probe" -}}
{{- $ := .context }}
{{- $probe := deepCopy .probe }}
{{- $web := $.Values.webConfig }}
{{- if $probe.httpGet }}
{{- $_ := set $probe.httpGet "path" (printf "%s%s" (include "acme-http01-exporter.routePrefix" $) $probe.httpGet.path) }}
{{- $mode := $web.probes.mode | default "auto" }}
{{- $credentials := $web.probes.basicAuth | default dict }}
{{- if eq $mode "auto" }}
{{- $clientAuth := include "acme-http01-exporter.clientAuthType" $ }}
{{- $basicAuth := and (not $web.existingSecret) (dig "basic_auth_users" nil $web.config) }}
{{- if or (and $basicAuth (not $credentials.username)) (has $clientAuth (list "RequireAnyClientCert" "RequireAndVerifyClientCert")) }}
{{- $mode = "tcp" }}
{{- end }}
{{- end }}
{{- if eq $mode "tcp" }}
{{- $port := $probe.httpGet.port }}
{{- $_ := unset $probe "httpGet" }}
{{- $_ := set $probe "tcpSocket" (dict "port" $port) }}
{{- else }}
{{- $get := $probe.httpGet }}
{{- if include "acme-http01-exporter.tlsEnabled" $ }}
{{- $_ := set $get "scheme" "HTTPS" }}
{{- end }}
{{- if $credentials.username }}
{{- $header := dict "name" "Authorization" "value" (printf "Basic %s" (printf "%s:%s" $credentials.username $credentials.password | b64enc)) }}
{{- $_ := set $get "httpHeaders" (append (default (list) $get.httpHeaders) $header) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/* The route prefix every path is under, as the exporter computes it (Prometheus' rule):
     web.routePrefix, else the path of web.externalUrl, without a trailing slash; empty for
     the root. */}}
{{- define "acme-http01-exporter.routePrefix" -}}
{{- $prefix := .Values.web.routePrefix -}}
{{- if and (not $prefix) .Values.web.externalUrl -}}
{{- $prefix = (urlParse .Values.web.externalUrl).path -}}
{{- end -}}
{{- $prefix = trimAll "/" ($prefix | default "") -}}
{{- if $prefix }}/{{ $prefix }}{{ end -}}
{{- end }}

{{/* config.sources.kubernetes as YAML when it is set (`{}` when it is set but empty: every
     default), else nothing. With existingConfigMap or existingSecret the chart still reads it
     from the values, for the RBAC and the token (see values.yaml: discovery). */}}
{{- define "acme-http01-exporter.kubernetesSource" -}}
{{- $sources := (.Values.config | default dict).sources | default dict }}
{{- if kindIs "map" $sources.kubernetes }}
{{- toYaml $sources.kubernetes }}
{{- end }}
{{- end }}

{{/* The enabled kinds of config.sources.kubernetes, space-separated, in a fixed order (a
     kind is enabled unless its `enabled` is false); nothing without the source. */}}
{{- define "acme-http01-exporter.discoveryKinds" -}}
{{- with include "acme-http01-exporter.kubernetesSource" . }}
{{- $kubernetes := fromYaml . }}
{{- $kinds := list }}
{{- range list "ingress" "certificate" "httproute" }}
{{- if ne (toString (dig "enabled" true (get $kubernetes . | default dict))) "false" }}
{{- $kinds = append $kinds . }}
{{- end }}
{{- end }}
{{- join " " $kinds }}
{{- end }}
{{- end }}

{{/* The RBAC rules of the discovery (dict "kinds" <enabled kinds> "scope" <"namespaced":
     the namespaced resources, "cluster": the cluster-scoped ones, "all": both>): get, list
     and watch only, on the resources each kind reads. */}}
{{- define "acme-http01-exporter.discoveryRules" -}}
{{- $namespaced := ne .scope "cluster" }}
{{- $cluster := ne .scope "namespaced" }}
{{- if and $namespaced (has "ingress" .kinds) }}
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "certificate" .kinds }}
{{- $resources := list }}
{{- if $namespaced }}{{ $resources = list "certificates" "issuers" }}{{ end }}
{{- if $cluster }}{{ $resources = append $resources "clusterissuers" }}{{ end }}
- apiGroups: ["cert-manager.io"]
  resources: {{ toJson $resources }}
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if and $namespaced (has "httproute" .kinds) }}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "gateways"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}

{{/* "true" when the exporter's container gets the ServiceAccount token: the Kubernetes
     source is set without a kubeconfig (the in-cluster service account). */}}
{{- define "acme-http01-exporter.discoveryToken" -}}
{{- with include "acme-http01-exporter.kubernetesSource" . }}
{{- if not (fromYaml .).kubeconfig }}true{{ end }}
{{- end }}
{{- end }}

{{/* The ConfigMaps of domain lists mounted in the exporter's container, as YAML: a list of
     {volume, configMap, mountPath}: discovery.files.configMaps, then the chart's own lists.
     Fails on a mount path used twice. */}}
{{- define "acme-http01-exporter.domainMounts" -}}
{{- $mounts := list }}
{{- range $i, $item := .Values.discovery.files.configMaps }}
{{- $path := $item.mountPath | default (printf "/etc/acme-http01-exporter/domains/%s" $item.name) | trimSuffix "/" }}
{{- $mounts = append $mounts (dict "volume" (printf "domains-%d" $i) "configMap" $item.name "mountPath" $path) }}
{{- end }}
{{- if .Values.discovery.files.lists }}
{{- $mounts = append $mounts (dict "volume" "domains-chart" "configMap" (printf "%s-domains" (include "acme-http01-exporter.fullname" .)) "mountPath" "/etc/acme-http01-exporter/domains/chart") }}
{{- end }}
{{- $reserved := list "/etc/acme-http01-exporter" "/etc/acme-http01-exporter/config.yml" "/etc/acme-http01-exporter/web" "/etc/acme-http01-exporter/tls" "/var/run/secrets/kubernetes.io/serviceaccount" }}
{{- $seen := list }}
{{- range $mounts }}
{{- if has .mountPath $reserved }}
{{- fail (printf "discovery.files: the ConfigMap %s cannot be mounted at %s, where the chart mounts the config, the web config, the TLS files or the token: give it another mountPath" .configMap .mountPath) }}
{{- end }}
{{- if has .mountPath $seen }}
{{- fail (printf "discovery.files: two ConfigMaps are mounted at %s (the chart's own lists use /etc/acme-http01-exporter/domains/chart): give one a mountPath" .mountPath) }}
{{- end }}
{{- $seen = append $seen .mountPath }}
{{- end }}
{{- if $mounts }}
{{- toYaml $mounts }}
{{- end }}
{{- end }}
