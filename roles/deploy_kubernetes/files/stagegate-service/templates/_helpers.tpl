{{/*
Slot of a workload release: the colour for blue-green, the track otherwise.
*/}}
{{- define "stagegate-service.slot" -}}
{{- if .Values.color -}}{{ .Values.color }}{{- else -}}{{ .Values.track }}{{- end -}}
{{- end -}}

{{/*
Name of every object of a workload release: <appName>-<slot>.
*/}}
{{- define "stagegate-service.fullname" -}}
{{- printf "%s-%s" .Values.appName (include "stagegate-service.slot" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stagegate-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels on every object.
*/}}
{{- define "stagegate-service.commonLabels" -}}
helm.sh/chart: {{ include "stagegate-service.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Values.appName }}
{{- end -}}

{{/*
Selector of a workload's pods (never changes for a release: Deployment
selectors are immutable, so the version is not part of it).
*/}}
{{- define "stagegate-service.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.appName }}
app.kubernetes.io/instance: {{ include "stagegate-service.fullname" . }}
{{- end -}}

{{/*
Labels of a workload's objects and pods: who, which version, which slot.
*/}}
{{- define "stagegate-service.labels" -}}
{{ include "stagegate-service.commonLabels" . }}
{{ include "stagegate-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.version | quote }}
stagegate.io/version: {{ .Values.version | quote }}
stagegate.io/track: {{ .Values.track }}
{{- if .Values.color }}
stagegate.io/color: {{ .Values.color }}
{{- end }}
{{- end -}}

{{/*
Labels of the router objects (shared by the slots).
*/}}
{{- define "stagegate-service.routerLabels" -}}
{{ include "stagegate-service.commonLabels" . }}
app.kubernetes.io/name: {{ .Values.appName }}
app.kubernetes.io/component: router
{{- end -}}

{{/*
A value rendered as an environment variable string: booleans as true/false,
whole numbers without exponent, lists joined with commas.
*/}}
{{- define "stagegate-service.envString" -}}
{{- $v := . -}}
{{- if kindIs "slice" $v -}}
{{- $parts := list -}}
{{- range $v -}}{{- $parts = append $parts (include "stagegate-service.envString" .) -}}{{- end -}}
{{- join "," $parts -}}
{{- else if and (kindIs "float64" $v) (eq (floor $v) $v) -}}
{{- printf "%d" (int64 $v) -}}
{{- else -}}
{{- toString $v -}}
{{- end -}}
{{- end -}}

{{/*
The data of the flags ConfigMap (also hashed into the pod template).
*/}}
{{- define "stagegate-service.flagsData" -}}
{{- range $name, $value := .Values.flags }}
{{ $name }}: {{ include "stagegate-service.envString" $value | quote }}
{{- end }}
{{- end -}}

{{/*
An intOrString value: "50%" quoted, "1" as a bare integer.
*/}}
{{- define "stagegate-service.intOrString" -}}
{{- if hasSuffix "%" . -}}{{ . | quote }}{{- else -}}{{ . }}{{- end -}}
{{- end -}}
