{{- with .Values.router.ingress }}
{{- if .enabled }}
{{- range $slot := list "stable" "canary" }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ if eq $slot "stable" }}{{ $.Values.appName }}{{ else }}{{ $.Values.appName }}-canary{{ end }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "stagegate-service.routerLabels" $ | nindent 4 }}
  {{- if or (eq $slot "canary") $.Values.router.ingress.annotations }}
  annotations:
    {{- with $.Values.router.ingress.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if eq $slot "canary" }}
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: {{ $.Values.router.ingress.canaryWeight | quote }}
    nginx.ingress.kubernetes.io/canary-weight-total: "100"
    {{- end }}
  {{- end }}
spec:
  ingressClassName: {{ $.Values.router.ingress.className }}
  rules:
    - host: {{ $.Values.router.ingress.host }}
      http:
        paths:
          - path: {{ $.Values.router.ingress.path }}
            pathType: {{ $.Values.router.ingress.pathType }}
            backend:
              service:
                name: {{ $.Values.appName }}-{{ $slot }}
                port:
                  number: {{ $.Values.service.port }}
{{- end }}
{{- end }}
{{- end }}
