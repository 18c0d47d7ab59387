{{/* The chart name, or nameOverride. */}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, the release name when it contains the chart name, or both. */}}
{{- define "portcullis.fullname" -}}
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

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* edge or sidecar; anything else fails the rendering. */}}
{{- define "portcullis.mode" -}}
{{- if not (has .Values.mode (list "edge" "sidecar")) }}
{{- fail (printf "mode must be edge or sidecar, not %v" .Values.mode) }}
{{- end }}
{{- .Values.mode }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the serving Pods (not the migration Job's). */}}
{{- define "portcullis.podSelectorLabels" -}}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/component: {{ include "portcullis.mode" . }}
{{- end }}

{{- define "portcullis.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{- define "portcullis.secretName" -}}
{{- .Values.secret.existingSecret | default (include "portcullis.fullname" .) }}
{{- end }}

{{/* Listener ports, from the config (defaults as in deploy/config.reference.yaml). */}}
{{- define "portcullis.proxyPort" -}}{{ dig "serve" "proxy" "port" 4455 .Values.config }}{{- end }}
{{- define "portcullis.publicPort" -}}{{ dig "serve" "public" "port" 4433 .Values.config }}{{- end }}
{{- define "portcullis.adminPort" -}}{{ dig "serve" "admin" "port" 4434 .Values.config }}{{- end }}
{{- define "portcullis.apiPort" -}}{{ dig "serve" "api" "port" 4456 .Values.config }}{{- end }}

{{/* "true" when the admin API listens on loopback only (then it is neither declared nor exposed). */}}
{{- define "portcullis.adminLoopback" -}}
{{- if has (dig "serve" "admin" "host" "127.0.0.1" .Values.config) (list "127.0.0.1" "localhost" "::1") }}true{{ end }}
{{- end }}

{{/* "true" when the decisions API is on. */}}
{{- define "portcullis.apiEnabled" -}}
{{- if not (dig "serve" "api" "disabled" false .Values.config) }}true{{ end }}
{{- end }}
