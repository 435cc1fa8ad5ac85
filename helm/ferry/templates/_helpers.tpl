{{/* SPDX-License-Identifier: Apache-2.0 */}}

{{/* The prefix of every object's name: the release name, unless it already says ferry. */}}
{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ferry.operator.name" -}}{{ include "ferry.fullname" . }}-operator{{- end -}}
{{- define "ferry.agent.name" -}}{{ include "ferry.fullname" . }}-node-agent{{- end -}}
{{- define "ferry.operator.tlsSecret" -}}{{ include "ferry.fullname" . }}-operator-tls{{- end -}}
{{- define "ferry.agent.tlsSecret" -}}{{ include "ferry.fullname" . }}-agent-tls{{- end -}}
{{- define "ferry.caSecret" -}}{{ include "ferry.fullname" . }}-ca{{- end -}}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "operator"). */}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ default .ctx.Chart.Name .ctx.Values.nameOverride }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ferry.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Whether the agents watch the instance metadata service: agent.imds.enabled, or aws. */}}
{{- define "ferry.imdsEnabled" -}}
{{- if kindIs "bool" .Values.agent.imds.enabled -}}
{{- .Values.agent.imds.enabled -}}
{{- else -}}
{{- eq .Values.addressMover "aws" -}}
{{- end -}}
{{- end -}}

{{/*
Checks between values that the schema cannot express; each failure names the values. (helm lint
only logs a fail, so these show at install and template time.)
*/}}
{{- define "ferry.validate" -}}
{{- if eq (int .Values.agent.apiPort) (int .Values.agent.httpPort) -}}
{{- fail (printf "agent.apiPort and agent.httpPort are both %v: the agent needs two host ports" .Values.agent.apiPort) -}}
{{- end -}}
{{- end -}}

{{/*
An EC P-256 key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), which is what Netty reads: Sprig's
genPrivateKey "ecdsa" writes SEC 1 ("BEGIN EC PRIVATE KEY"), which Netty refuses. For P-256 the
SEC 1 DER is always 121 bytes (Go pads the scalar to 32 bytes and includes the curve and the
65-byte public key), so its PKCS#8 form is a fixed 29-byte header followed by it (RFC 5208:
SEQUENCE { INTEGER 0, AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, OCTET STRING (121) }),
exactly what `openssl pkcs8 -topk8 -nocrypt` writes. Anything else is refused rather than guessed.
*/}}
{{- define "ferry.pkcs8" -}}
{{- $der := regexReplaceAll "-----[A-Z ]+-----" . "" | nospace | b64dec -}}
{{- if or (ne (len $der) 121) (not (hasPrefix (b64dec "MHc=") $der)) -}}
{{- fail "ferry.pkcs8: expected a 121-byte SEC 1 P-256 key from genPrivateKey \"ecdsa\"" -}}
{{- end -}}
{{- $p8 := print (b64dec "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHk=") $der | b64enc -}}
-----BEGIN PRIVATE KEY-----
{{ regexFindAll ".{1,64}" $p8 -1 | join "\n" }}
-----END PRIVATE KEY-----
{{ end -}}

{{/*
The log format and level (values logging.*), as Quarkus configuration: both programs read
QUARKUS_* variables. The level is that of Ferry's own loggers (dev.ferry); the libraries' stay at
INFO, so that DEBUG shows what Ferry does without every HTTP/2 frame.
*/}}
{{- define "ferry.logging.env" -}}
- name: QUARKUS_LOG_CONSOLE_JSON_ENABLED
  value: {{ eq .Values.logging.format "json" | quote }}
- name: QUARKUS_LOG_CATEGORY__DEV_FERRY__LEVEL
  value: {{ .Values.logging.level | quote }}
{{- end -}}
