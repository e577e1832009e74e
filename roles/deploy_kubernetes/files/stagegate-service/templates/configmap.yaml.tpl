{{- if .Values.workload.enabled }}
{{- $data := include "stagegate-service.flagsData" . | trim }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "stagegate-service.fullname" . }}-flags
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "stagegate-service.labels" . | nindent 4 }}
data:
{{- if $data }}
  {{- $data | nindent 2 }}
{{- else }} {}
{{- end }}
{{- end }}
