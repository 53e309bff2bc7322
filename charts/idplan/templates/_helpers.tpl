{{/* The chart's name, and the release's full name (at most 63 characters: a DNS label). */}}
{{- define "idplan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "idplan.fullname" -}}
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

{{- define "idplan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "idplan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "idplan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "idplan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "idplan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "idplan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "idplan.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "idplan.configMapName" -}}
{{- default (include "idplan.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/*
The spec as YAML text: `spec` given as a string is kept byte for byte (its comments and line
numbers are what idplan's errors point at); a map is written out as YAML.
*/}}
{{- define "idplan.specText" -}}
{{- if kindIs "string" .Values.spec }}
{{- .Values.spec }}
{{- else }}
{{- toYaml .Values.spec }}
{{- end }}
{{- end }}

{{/*
Refuses what cannot work: no spec at all, and (when the chart holds the spec) a state that is
not remote, since the pod's files are read-only and die with it.
*/}}
{{- define "idplan.validate" -}}
{{- if and (not .Values.existingConfigMap) (empty .Values.spec) }}
{{- fail "idplan: set `spec` (the idplan.yaml, as a string or a map) or `existingConfigMap`" }}
{{- end }}
{{- $state := .Values.watch.state }}
{{- $fromEnv := false }}
{{- range .Values.env }}
{{- if eq .name "IDPLAN_STATE" }}{{ $fromEnv = true }}{{ end }}
{{- end }}
{{- if and (not $state) (not .Values.existingConfigMap) (not $fromEnv) }}
{{- $spec := .Values.spec }}
{{- if kindIs "string" $spec }}
{{- $spec = fromYaml $spec }}
{{- end }}
{{- if hasKey $spec "Error" }}
{{- fail (printf "idplan: `spec` is not YAML: %s" (get $spec "Error")) }}
{{- end }}
{{- $state = default "" (get $spec "state") }}
{{- end }}
{{- if and $state (not (regexMatch "^(s3|gs|azblob)://" (toString $state))) }}
{{- fail (printf "idplan: the state %q is not remote: in the cluster it must be s3://, gs:// or azblob:// (watch.state or the spec's state:)" $state) }}
{{- end }}
{{- if and (not $state) (not .Values.existingConfigMap) (not $fromEnv) }}
{{- fail "idplan: no state location: set watch.state or the spec's `state:` to s3://, gs:// or azblob:// (the pod's own files are read-only and lost at restart)" }}
{{- end }}
{{- end }}
