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

{{/*
An image reference: call with (dict "ctx" $ "image" .Values.operator.image). With a digest it is
repository@digest and the tag is ignored (a digest names exactly one image; a tag can be moved).
global.imageRegistry, which an umbrella chart sets for all its subcharts, goes in front.
*/}}
{{- define "ferry.image" -}}
{{- $repository := .image.repository -}}
{{- with (.ctx.Values.global | default dict).imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets and global.imagePullSecrets (names, or {name: ...}), once each. */}}
{{- define "ferry.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat (default list .Values.imagePullSecrets) (default list (.Values.global | default dict).imagePullSecrets) -}}
{{- if kindIs "string" . -}}
{{- $names = append $names . -}}
{{- else -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- range uniq $names }}
- name: {{ . }}
{{- end -}}
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
Whether each agent has a certificate of its own, from cert-manager's csi-driver
(certManager.csiDriver.enabled; ferry.validate refuses it without certManager.enabled).
*/}}
{{- define "ferry.agentOwnCertificates" -}}
{{- and .Values.certManager.enabled .Values.certManager.csiDriver.enabled -}}
{{- end -}}

{{/*
The issuer that signs the chart's certificates when cert-manager issues them, as YAML (name, kind,
group): certManager.issuerRef, or the CA Issuer the chart makes (cert-manager.yaml).
*/}}
{{- define "ferry.certManager.issuer" -}}
{{- $issuer := .Values.certManager.issuerRef | default dict -}}
name: {{ default (printf "%s-ca" (include "ferry.fullname" .)) $issuer.name }}
kind: {{ default "Issuer" $issuer.kind }}
group: {{ default "cert-manager.io" $issuer.group }}
{{- end -}}

{{/*
Checks between values that the schema cannot express; each failure names the values. (helm lint
only logs a fail, so these show at install and template time.)
*/}}
{{- define "ferry.validate" -}}
{{- if eq (int .Values.agent.apiPort) (int .Values.agent.httpPort) -}}
{{- fail (printf "agent.apiPort and agent.httpPort are both %v: the agent needs two host ports" .Values.agent.apiPort) -}}
{{- end -}}
{{- if and .Values.certManager.csiDriver.enabled (not .Values.certManager.enabled) -}}
{{- fail "certManager.csiDriver.enabled is true but certManager.enabled is false: the csi-driver asks cert-manager for each agent's certificate. Set certManager.enabled=true (with cert-manager and its csi-driver installed), or certManager.csiDriver.enabled=false" -}}
{{- end -}}
{{- if not .Values.certManager.enabled -}}
{{- range $what := list "validityDays" "caValidityDays" -}}
{{- if le (int (get $.Values.tls $what)) (int $.Values.tls.renewBeforeDays) -}}
{{- fail (printf "tls.renewBeforeDays (%v) must be less than tls.%s (%v): else every upgrade makes new certificates" $.Values.tls.renewBeforeDays $what (get $.Values.tls $what)) -}}
{{- end -}}
{{- end -}}
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

{{/*
The operator's affinity: operator.affinity, plus a pod anti-affinity that spreads the replicas
over nodes (operator.podAntiAffinity: preferred or required, on kubernetes.io/hostname), so that
one node going away takes at most one replica, and the Lease passes to another at once. An
affinity.podAntiAffinity of your own replaces it.
*/}}
{{- define "ferry.operator.affinity" -}}
{{- $affinity := deepCopy (default dict .Values.operator.affinity) -}}
{{- $mode := .Values.operator.podAntiAffinity -}}
{{- if and (ne $mode "none") (not (hasKey $affinity "podAntiAffinity")) -}}
{{- $term := dict
      "topologyKey" "kubernetes.io/hostname"
      "labelSelector" (dict "matchLabels" (include "ferry.selectorLabels" (dict "ctx" . "component" "operator") | fromYaml)) -}}
{{- if eq $mode "required" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- with $affinity }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
A certificate's notAfter as YYYYMMDDhhmmss in UTC, from a Secret's base64 PEM; empty when it
cannot be read (the certificate is then made anew). Helm has no X.509 parser: the validity is the
first two times in the DER (RFC 5280: TBSCertificate holds version, serialNumber, signature,
issuer, then validity), each a UTCTime (tag 0x17, 13 bytes, YYMMDDhhmmssZ, for 1950-2049) or a
GeneralizedTime (tag 0x18, 15 bytes, YYYYMMDDhhmmssZ); nothing before them has that shape but
by a chance of about one in 10^12 in the 16 random bytes of the serial.
*/}}
{{- define "ferry.notAfter" -}}
{{- $der := regexReplaceAll "-----[A-Z ]+-----" (b64dec .) "" | nospace | b64dec -}}
{{- $times := regexFindAll "\\x17\\x0d[0-9]{12}Z|\\x18\\x0f[0-9]{14}Z" $der 2 -}}
{{- if eq (len $times) 2 -}}
{{- $t := index $times 1 | trimAll "Z" | substr 2 16 -}}
{{- if eq (len $t) 12 -}}
{{- if lt (atoi (substr 0 2 $t)) 50 }}20{{ else }}19{{ end }}{{ $t -}}
{{- else -}}
{{- $t -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The handoff socket's directory (agent.socketDir) and every directory above it, one a line: a
pod that can write any of them can replace the agent's socket (admission-policies.yaml). Each
directory under /run is also named under /var/run, and the other way round: /var/run is a
symlink to /run on most distributions, and the kubelet follows it when it mounts a hostPath.
*/}}
{{- define "ferry.handoffDir.paths" -}}
{{- $parts := list -}}
{{- range splitList "/" .Values.agent.socketDir -}}
{{- if and . (ne . ".") -}}
{{- $parts = append $parts . -}}
{{- end -}}
{{- end -}}
{{- $paths := list "/" -}}
{{- range $i, $_ := $parts -}}
{{- $dir := printf "/%s" (join "/" (slice $parts 0 (add1 $i))) -}}
{{- $paths = append $paths $dir -}}
{{- if or (eq $dir "/run") (hasPrefix "/run/" $dir) -}}
{{- $paths = append $paths (printf "/var%s" $dir) -}}
{{- else if or (eq $dir "/var/run") (hasPrefix "/var/run/" $dir) -}}
{{- $paths = append $paths (trimPrefix "/var" $dir) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $paths -}}
{{- end -}}

{{/*
Those directories as one RE2 expression for CEL's matches(), written as a CEL string literal.
It takes every spelling of them that the API server lets through and the kubelet mounts as the
same directory: repeated slashes, "." components and a trailing slash ("/run//ferry/",
"/run/./ferry"; a ".." is refused). A directory below the socket's, or beside it, does not match:
it cannot reach handoff.sock.
*/}}
{{- define "ferry.handoffDir.regex" -}}
{{- $sep := "/([.]?/)*" -}}
{{- $dirs := list -}}
{{- range splitList "\n" (include "ferry.handoffDir.paths" .) -}}
{{- if ne . "/" -}}
{{- $quoted := list -}}
{{- range splitList "/" (trimPrefix "/" .) -}}
{{- $quoted = append $quoted (regexQuoteMeta .) -}}
{{- end -}}
{{- $dirs = append $dirs (join $sep $quoted) -}}
{{- end -}}
{{- end -}}
{{- $re := printf "^%s([.]?|(%s)(%s[.]?)?)$" $sep (join "|" $dirs) $sep -}}
{{- printf "'%s'" ($re | replace "\\" "\\\\" | replace "'" "\\'") -}}
{{- end -}}
