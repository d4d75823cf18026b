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
{{ fail "kms.keyId is required with kms.provider=aws-kms (a key ARN, id or alias such as alias/atoll) and with kms.provider=vault-transit (<mount>/keys/<name>, e.g. transit/keys/atoll)" }}
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
{{- if eq .Values.kms.provider "vault-transit" }}
{{- $v := .Values.kms.vault }}
{{- if not $v.address }}
{{- fail "kms.vault.address is required with kms.provider=vault-transit" }}
{{- end }}
- name: ATOLL_VAULT_ADDR
  value: {{ $v.address | quote }}
- name: ATOLL_VAULT_AUTH
  value: {{ $v.auth.method | quote }}
{{- if $v.caCert }}
- name: ATOLL_VAULT_CACERT
  value: /etc/atoll/vault-ca/ca.crt
{{- end }}
{{- if $v.namespace }}
- name: ATOLL_VAULT_NAMESPACE
  value: {{ $v.namespace | quote }}
{{- end }}
{{- if eq $v.auth.method "kubernetes" }}
- name: ATOLL_VAULT_AUTH_MOUNT
  value: {{ $v.auth.kubernetes.mount | quote }}
- name: ATOLL_VAULT_JWT_FILE
  value: /var/run/secrets/atoll/vault/token
{{- else }}
- name: ATOLL_VAULT_TOKEN_FILE
  value: /var/run/secrets/atoll/vault/token
{{- end }}
{{- end }}
- name: ATOLL_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/*
Vault role of one component (dict "root" . "component" "controller"|"gateway"):
each ServiceAccount logs in with its own role, so the gateway's Vault token can
only unwrap.
*/}}
{{- define "atoll.vaultRoleEnv" -}}
{{- $v := .root.Values.kms.vault }}
{{- if and (eq .root.Values.kms.provider "vault-transit") (eq $v.auth.method "kubernetes") }}
- name: ATOLL_VAULT_ROLE
  value: {{ ternary $v.auth.kubernetes.gatewayRole $v.auth.kubernetes.role (eq .component "gateway") | quote }}
{{- end }}
{{- end -}}

{{- define "atoll.vaultVolumeMounts" -}}
{{- if eq .Values.kms.provider "vault-transit" }}
- name: vault-auth
  mountPath: /var/run/secrets/atoll/vault
  readOnly: true
{{- if .Values.kms.vault.caCert }}
- name: vault-ca
  mountPath: /etc/atoll/vault-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/*
With Kubernetes auth: the pod's own ServiceAccount token, projected for the
Vault audience (not the API server's) and rotated by the kubelet. With token
auth: the Secret holding this component's own Vault token (the gateway's may only unwrap).
*/}}
{{- define "atoll.vaultVolumes" -}}
{{- $v := .root.Values.kms.vault }}
{{- if eq .root.Values.kms.provider "vault-transit" }}
- name: vault-auth
{{- if eq $v.auth.method "kubernetes" }}
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ $v.auth.kubernetes.audience | quote }}
          expirationSeconds: {{ $v.auth.kubernetes.tokenExpirationSeconds }}
{{- else }}
{{- $secretName := required "kms.vault.auth.token.secretName is required with kms.vault.auth.method=token" $v.auth.token.secretName }}
{{- $gatewaySecretName := required "kms.vault.auth.token.gatewaySecretName is required with kms.vault.auth.method=token: a Secret holding the gateway's own Vault token (policy atoll-gateway, decrypt only)" $v.auth.token.gatewaySecretName }}
{{- if eq $secretName $gatewaySecretName }}
{{- fail "kms.vault.auth.token.gatewaySecretName must differ from secretName: the gateway's Vault token may only unwrap (policy atoll-gateway), the controller's may also create data keys" }}
{{- end }}
  secret:
    secretName: {{ ternary $gatewaySecretName $secretName (eq .component "gateway") }}
    items:
      - key: {{ $v.auth.token.secretKey }}
        path: token
{{- end }}
{{- if $v.caCert }}
- name: vault-ca
  configMap:
    name: atoll-vault-ca
{{- end }}
{{- end }}
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
