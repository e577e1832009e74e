{{- with .Values.router.activeService }}
{{- if .enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ $.Values.appName }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "stagegate-service.routerLabels" $ | nindent 4 }}
  annotations:
    stagegate.io/role: blue-green-active
spec:
  type: {{ $.Values.service.type }}
  selector:
    app.kubernetes.io/name: {{ $.Values.appName }}
    stagegate.io/color: {{ .color }}
  ports:
    - name: http
      port: {{ $.Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- end }}
