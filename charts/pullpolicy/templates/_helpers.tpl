{{/* The labels of manifests/: the chart renders the same objects as kustomize. */}}
{{- define "pullpolicy.labels" -}}
app.kubernetes.io/name: pullpolicy
{{- end }}
{{- define "pullpolicy.selectorLabels" -}}
app.kubernetes.io/name: pullpolicy
app.kubernetes.io/component: controller
{{- end }}
