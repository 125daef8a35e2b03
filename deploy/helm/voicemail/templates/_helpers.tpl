{{/* Names and labels shared by the templates. */}}
{{- define "voicemail.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voicemail.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "voicemail.labels" -}}
app.kubernetes.io/name: {{ include "voicemail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "voicemail.selector" -}}
app.kubernetes.io/name: {{ include "voicemail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: voicemail
{{- end -}}

{{/* VOICEMAIL_<KEY> for a configuration key, as `voicemail serve` reads it. */}}
{{- define "voicemail.envName" -}}
{{- printf "VOICEMAIL_%s" (. | upper | replace "." "_") -}}
{{- end -}}

{{- define "voicemail.secretName" -}}
{{- printf "%s-secrets" (include "voicemail.fullname" .) -}}
{{- end -}}
