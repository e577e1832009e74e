{{- if .Values.workload.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "stagegate-service.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "stagegate-service.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "stagegate-service.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end }}
