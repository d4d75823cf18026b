{{/*
Names are fixed (atoll-*), not derived from the release: the operator looks
them up at run time and cluster-scoped objects exist once per cluster.
*/}}

{{- define "atoll.labels" -}}
app.kubernetes.io/name: atoll
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: atoll
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
Labels of the webhook configurations: no app.kubernetes.io/managed-by,
because the controller server-side applies them with managed-by=atoll and
the two would fight on every start and upgrade.
*/}}
{{- define "atoll.webhookLabels" -}}
app.kubernetes.io/name: atoll
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: atoll
app.kubernetes.io/component: webhook
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "atoll.selectorLabels" -}}
app.kubernetes.io/name: atoll
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "atoll.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "atoll.kmsKeyId" -}}
{{- if .Values.kms.keyId -}}
{{ .Values.kms.keyId }}
{{- else if eq .Values.kms.provider "local" -}}
local/default
{{- else -}}
{{ fail "kms.keyId is required with kms.provider=aws-kms (a key ARN, id or alias such as alias/atoll)" }}
{{- end -}}
{{- end -}}

{{/* Environment shared by every atoll process: namespace, KMS, logging. */}}
{{- define "atoll.commonEnv" -}}
- name: ATOLL_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: ATOLL_KMS_PROVIDER
  value: {{ .Values.kms.provider | quote }}
- name: ATOLL_KMS_KEY_ID
  value: {{ include "atoll.kmsKeyId" . | quote }}
{{- if eq .Values.kms.provider "aws-kms" }}
{{- if not .Values.kms.aws.region }}
{{- fail "kms.aws.region is required with kms.provider=aws-kms" }}
{{- end }}
- name: AWS_REGION
  value: {{ .Values.kms.aws.region | quote }}
{{- if .Values.kms.aws.endpoint }}
- name: ATOLL_KMS_ENDPOINT
  value: {{ .Values.kms.aws.endpoint | quote }}
{{- end }}
{{- end }}
- name: ATOLL_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* The restricted Pod Security Standard, for every atoll pod. */}}
{{- define "atoll.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "atoll.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "atoll.webhookClientConfig" -}}
clientConfig:
  service:
    name: atoll-webhook
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
{{- end }}
{{- define "atoll.webhookAnnotations" -}}
{{- if .Values.webhook.certManager.enabled }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/atoll-webhook
{{- end }}
{{- end }}

{{/* Non-empty when the gateway reads its certificate from a mounted Secret (modes secret and cert-manager). */}}
{{- define "atoll.gatewayTLSMounted" -}}
{{- $t := .Values.gateway.tls -}}
{{- if and (not $t.insecurePlaintext) (ne $t.mode "self-managed") -}}true{{- end -}}
{{- end }}
