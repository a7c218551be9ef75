{{/*
Names and labels shared by every template of the chart.
*/}}

{{/* The chart name, or nameOverride; the app.kubernetes.io/name label. */}}
{{- define "backup-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every namespaced resource and of the ClusterRole and its binding: the release
name when it already contains the chart name (`helm install backup-operator ...` gives the
names of deploy/backup-operator), otherwise release-chart. 63 characters at most, the
limit of a label value.
*/}}
{{- define "backup-operator.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "backup-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "backup-operator.labels" -}}
helm.sh/chart: {{ include "backup-operator.chart" . }}
{{ include "backup-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "backup-operator.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: pg-operators
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the operator's Pods; they never change on upgrade. */}}
{{- define "backup-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backup-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backup-operator.serviceAccountName" -}}
{{- default (include "backup-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "backup-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "backup-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "backup-operator.imageTag" .) }}
{{- end }}
