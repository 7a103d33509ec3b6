{{/* Chart name, truncated to a DNS label. */}}
{{- define "canary-engine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, followed by the chart name unless the release name already
contains it, truncated to a DNS label.
*/}}
{{- define "canary-engine.fullname" -}}
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

{{- define "canary-engine.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "canary-engine.labels" -}}
helm.sh/chart: {{ include "canary-engine.chart" . }}
{{ include "canary-engine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: canary-engine
{{- end }}

{{/* Labels that select the pods (never change them on upgrade: selectors are immutable). */}}
{{- define "canary-engine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "canary-engine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "canary-engine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "canary-engine.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image: by digest when one is given, else by tag (default: the chart's appVersion).
An empty or `latest` tag is refused: a moving tag makes rollbacks and audits meaningless.
*/}}
{{- define "canary-engine.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- $tag := toString (default .Chart.AppVersion .Values.image.tag) | trim }}
{{- if or (eq $tag "") (eq (lower $tag) "latest") }}
{{- fail (printf "image.tag %q is not allowed: pin a version or set image.digest" $tag) }}
{{- end }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{/* Secret and key holding the API token. */}}
{{- define "canary-engine.tokenSecretName" -}}
{{- default (printf "%s-token" (include "canary-engine.fullname" .)) .Values.auth.existingSecret }}
{{- end }}
{{- define "canary-engine.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* Secret holding the serving certificate. */}}
{{- define "canary-engine.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "canary-engine.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* http or https, for probes and scrapes. */}}
{{- define "canary-engine.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* Namespaces the promotion Role is granted in. */}}
{{- define "canary-engine.promotionNamespaces" -}}
{{- $nss := .Values.rbac.promotion.namespaces }}
{{- if not $nss }}{{ $nss = list .Release.Namespace }}{{ end }}
{{- toJson (uniq $nss) }}
{{- end }}

{{/* The rules in-cluster promotion needs: Istio traffic objects, nothing else. */}}
{{- define "canary-engine.promotionRules" -}}
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices"]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: ["networking.istio.io"]
  resources: ["destinationrules"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
"true" when a PostgreSQL result store is configured (`database.url` or `database.existingSecret`),
else empty: the server then keeps results in memory, per pod.
*/}}
{{- define "canary-engine.database" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}
