{{- with .Values.router.route }}
{{- if .enabled }}
{{- if not .parentRefs }}
{{- fail "router.route.parentRefs: name at least one Gateway the HTTPRoute attaches to, e.g. [{name: public-gateway, namespace: gateway-system}]" }}
{{- end }}
{{- if eq (add .weights.stable .weights.canary | int) 0 }}
{{- fail "router.route.weights: stable and canary are both 0; at least one backend must take traffic" }}
{{- end }}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ $.Values.appName }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "stagegate-service.routerLabels" $ | nindent 4 }}
spec:
  parentRefs:
    {{- toYaml .parentRefs | nindent 4 }}
  {{- with .hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: {{ .pathPrefix }}
      backendRefs:
        - group: ""
          kind: Service
          name: {{ $.Values.appName }}-stable
          port: {{ $.Values.service.port }}
          weight: {{ .weights.stable }}
        - group: ""
          kind: Service
          name: {{ $.Values.appName }}-canary
          port: {{ $.Values.service.port }}
          weight: {{ .weights.canary }}
{{- end }}
{{- end }}
