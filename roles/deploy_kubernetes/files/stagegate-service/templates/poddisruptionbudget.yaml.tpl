{{- if and .Values.workload.enabled .Values.pdb.enabled }}
{{- $min := .Values.pdb.minAvailable }}
{{- $max := .Values.pdb.maxUnavailable }}
{{- if and (kindIs "invalid" $min) (kindIs "invalid" $max) }}
{{- fail "pdb: set one of pdb.minAvailable and pdb.maxUnavailable (or pdb.enabled=false)" }}
{{- end }}
{{- if and (not (kindIs "invalid" $min)) (not (kindIs "invalid" $max)) }}
{{- fail "pdb: set only one of pdb.minAvailable and pdb.maxUnavailable, not both" }}
{{- end }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "stagegate-service.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "stagegate-service.labels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $min) }}
  minAvailable: {{ include "stagegate-service.envString" $min | include "stagegate-service.intOrString" }}
  {{- else }}
  maxUnavailable: {{ include "stagegate-service.envString" $max | include "stagegate-service.intOrString" }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "stagegate-service.selectorLabels" . | nindent 6 }}
{{- end }}
