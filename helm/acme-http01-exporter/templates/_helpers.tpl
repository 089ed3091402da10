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
