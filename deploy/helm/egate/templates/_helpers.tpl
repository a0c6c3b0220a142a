{{/* The name of every object: the release name when it says egate, else RELEASE-egate. */}}
{{- define "egate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "egate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "egate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "egate.tlsSecret" -}}
{{- if .Values.certManager.enabled -}}
{{ include "egate.fullname" . }}-tls
{{- else -}}
{{ required "tls.secretName is required when certManager.enabled is false" .Values.tls.secretName }}
{{- end -}}
{{- end -}}

{{/* Everything a webhook entry shares: where to call, and what to skip. */}}
{{- define "egate.clientConfig" -}}
clientConfig:
  service:
    name: {{ include "egate.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if not .root.Values.certManager.enabled }}
  caBundle: {{ required "tls.caBundle is required when certManager.enabled is false" .root.Values.tls.caBundle }}
  {{- end }}
{{- end -}}

{{- define "egate.matchConditions" -}}
matchConditions:
  - name: not-egate-itself
    expression: "request.namespace != '{{ .Release.Namespace }}'"
{{- end -}}

{{- define "egate.namespaceSelector" -}}
{{- with .Values.webhooks.excludeNamespaces }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ toJson . }}
{{- end }}
{{- end -}}

{{- define "egate.caInjection" -}}
{{- if .Values.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "egate.fullname" . }}-tls
{{- end }}
{{- end -}}
