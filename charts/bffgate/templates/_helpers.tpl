{{/*
Expand the name of the chart.
*/}}
{{- define "bffgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name (63 characters at most: DNS names).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "bffgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bffgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bffgate.labels" -}}
helm.sh/chart: {{ include "bffgate.chart" . }}
{{ include "bffgate.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bffgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bffgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "bffgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bffgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bffgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the Secret files are mounted; each secret setting X gets X_FILE=<dir>/<file>. */}}
{{- define "bffgate.secretsDir" -}}/etc/bffgate/secrets{{- end }}

{{/* Where the BFF_CONFIG file of `frontends` is mounted. */}}
{{- define "bffgate.frontendsDir" -}}/etc/bffgate/frontends{{- end }}

{{/* "true" when the client authenticates with a private key (private_key_jwt), else "". */}}
{{- define "bffgate.usesPrivateKey" -}}
{{- if or .Values.secrets.clientPrivateKey (eq (toString (index .Values.config "BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD" | default "")) "private_key_jwt") -}}true{{- end }}
{{- end }}

{{/* The Shared Signals delivery method: none, push or poll. */}}
{{- define "bffgate.ssfDelivery" -}}
{{- toString (index .Values.config "BFF_SSF_DELIVERY" | default "none") -}}
{{- end }}

{{/* "true" when bffgate gets a Redis password. */}}
{{- define "bffgate.hasRedisPassword" -}}
{{- if or .Values.redis.password .Values.redis.existingSecret -}}true{{- end }}
{{- end }}

{{/* "true" when bffgate gets a password for the sentinels themselves. */}}
{{- define "bffgate.hasSentinelPassword" -}}
{{- if eq .Values.redis.mode "sentinel" -}}
{{- if or .Values.redis.sentinel.password (and .Values.redis.existingSecret .Values.redis.existingSecretSentinelPasswordKey) -}}true{{- end }}
{{- end }}
{{- end }}

{{/*
The data of the chart's own Secret, as a dict of key → value (may be empty: then no Secret).
*/}}
{{- define "bffgate.secretData" -}}
{{- $data := dict }}
{{- if not .Values.secrets.existingSecret }}
{{- if .Values.frontends }}
{{- else if include "bffgate.usesPrivateKey" . }}
{{- $_ := set $data "client-private-key" .Values.secrets.clientPrivateKey }}
{{- else }}
{{- $_ := set $data "client-secret" .Values.secrets.clientSecret }}
{{- end }}
{{- $_ := set $data "session-secret" .Values.secrets.sessionSecret }}
{{- if ne (include "bffgate.ssfDelivery" .) "none" }}
{{- $_ := set $data "ssf-authorization" .Values.secrets.ssfAuthorization }}
{{- end }}
{{- end }}
{{- range .Values.frontends }}
{{- if not .existingSecret }}
{{- $file := include "bffgate.frontendSecretFile" . }}
{{- $_ := set $data $file (ternary .clientPrivateKey .clientSecret (eq $file (printf "frontend-%s-client-private-key" .name))) }}
{{- end }}
{{- end }}
{{- if not .Values.redis.existingSecret }}
{{- if .Values.redis.password }}
{{- $_ := set $data "redis-password" .Values.redis.password }}
{{- end }}
{{- if and (eq .Values.redis.mode "sentinel") .Values.redis.sentinel.password }}
{{- $_ := set $data "redis-sentinel-password" .Values.redis.sentinel.password }}
{{- end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
The ConfigMap's data: every non-empty `config` entry plus the Redis settings, as
environment variable name → string.
*/}}
{{- define "bffgate.configData" -}}
{{- $data := dict }}
{{- range $name, $value := .Values.config }}
{{- if kindIs "invalid" $value }}
{{- else if and $.Values.frontends (kindIs "slice" $value) (empty $value) }}
{{- /* with frontends, an empty list (the default BFF_ROUTES) is no setting: each frontend has its own */}}
{{- else if or (kindIs "slice" $value) (kindIs "map" $value) }}
{{- $_ := set $data $name (toJson $value) }}
{{- else if kindIs "float64" $value }}
{{- /* helm reads YAML numbers as float64, which print as 2.592e+06: print integers as integers */}}
{{- $_ := set $data $name (int64 $value | toString) }}
{{- else if ne (toString $value) "" }}
{{- $_ := set $data $name (toString $value) }}
{{- end }}
{{- end }}
{{- $redis := .Values.redis }}
{{- $_ := set $data "BFF_REDIS_URL" $redis.url }}
{{- if $redis.username }}
{{- $_ := set $data "BFF_REDIS_USERNAME" $redis.username }}
{{- end }}
{{- if eq $redis.mode "sentinel" }}
{{- $_ := set $data "BFF_REDIS_SENTINELS" (join "," $redis.sentinel.nodes) }}
{{- $_ := set $data "BFF_REDIS_SENTINEL_MASTER_NAME" $redis.sentinel.masterName }}
{{- else if eq $redis.mode "cluster" }}
{{- $_ := set $data "BFF_REDIS_CLUSTER_NODES" (join "," $redis.cluster.nodes) }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/*
The file (in the secrets volume, and key of the chart's Secret) of one frontend's credential:
`frontend-<name>-client-private-key` for private_key_jwt, else `frontend-<name>-client-secret`.
*/}}
{{- define "bffgate.frontendSecretFile" -}}
{{- if or .clientPrivateKey (eq (toString (.tokenEndpointAuthMethod | default "")) "private_key_jwt") -}}
frontend-{{ .name }}-client-private-key
{{- else -}}
frontend-{{ .name }}-client-secret
{{- end }}
{{- end }}

{{/*
The BFF_CONFIG file of `frontends` (docs/frontends.md): each frontend as given, its secret
replaced by the file it is mounted at.
*/}}
{{- define "bffgate.frontendsFile" -}}
{{- $dir := include "bffgate.secretsDir" . }}
{{- $list := list }}
{{- range .Values.frontends }}
{{- $file := include "bffgate.frontendSecretFile" . }}
{{- $item := omit . "clientSecret" "clientPrivateKey" "existingSecret" "existingSecretKey" }}
{{- $key := ternary "clientPrivateKeyFile" "clientSecretFile" (hasSuffix "private-key" $file) }}
{{- $_ := set $item $key (printf "%s/%s" $dir $file) }}
{{- $list = append $list $item }}
{{- end }}
{{- toYaml (dict "frontends" $list) }}
{{- end }}

{{/*
Every check values.schema.json cannot express, with a message that says what to do.
*/}}
{{- define "bffgate.validate" -}}
{{- $config := .Values.config }}
{{- if .Values.frontends }}
{{- range $name := list "BFF_OIDC_CLIENT_ID" "BFF_ROUTES" "BFF_STATIC_DIR" "BFF_SESSION_COOKIE_NAME" "BFF_POST_LOGOUT_REDIRECT_URL" }}
{{- if index $config $name }}
{{- fail (printf "config.%s is set, but with frontends each frontend gives its own (docs/frontends.md): remove it" $name) }}
{{- end }}
{{- end }}
{{- if or .Values.secrets.clientSecret .Values.secrets.clientPrivateKey }}
{{- fail "secrets.clientSecret or secrets.clientPrivateKey is set, but with frontends each frontend gives its own (frontends[].clientSecret, or frontends[].existingSecret): remove it" }}
{{- end }}
{{- $names := list }}
{{- range $i, $f := .Values.frontends }}
{{- if has $f.name $names }}
{{- fail (printf "frontends[%d].name %s is used twice" $i $f.name) }}
{{- end }}
{{- $names = append $names $f.name }}
{{- if and (not $f.publicUrl) (not (index $config "BFF_PUBLIC_URL")) }}
{{- fail (printf "frontends[%d] (%s): set publicUrl, or config.BFF_PUBLIC_URL as the default of every frontend" $i $f.name) }}
{{- end }}
{{- if and (not $f.issuer) (not (index $config "BFF_OIDC_ISSUER")) }}
{{- fail (printf "frontends[%d] (%s): set issuer, or config.BFF_OIDC_ISSUER as the default of every frontend" $i $f.name) }}
{{- end }}
{{- if and $f.clientSecret $f.clientPrivateKey }}
{{- fail (printf "frontends[%d] (%s): clientSecret and clientPrivateKey are both set: set one" $i $f.name) }}
{{- end }}
{{- if and $f.existingSecret (or $f.clientSecret $f.clientPrivateKey) }}
{{- fail (printf "frontends[%d] (%s): existingSecret and a clientSecret or clientPrivateKey are both set: set one" $i $f.name) }}
{{- end }}
{{- if not (or $f.existingSecret (hasSuffix "private-key" (include "bffgate.frontendSecretFile" $f) | ternary $f.clientPrivateKey $f.clientSecret)) }}
{{- fail (printf "frontends[%d] (%s): set clientSecret (or clientPrivateKey for private_key_jwt), or name a Secret holding it in existingSecret" $i $f.name) }}
{{- end }}
{{- end }}
{{- else }}
{{- range $name := list "BFF_PUBLIC_URL" "BFF_OIDC_ISSUER" "BFF_OIDC_CLIENT_ID" }}
{{- if not (index $config $name) }}
{{- fail (printf "config.%s is required (see docs/configuration.md): BFF_PUBLIC_URL is the https origin users open, BFF_OIDC_ISSUER the IdP's issuer URL, BFF_OIDC_CLIENT_ID this client's id" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.sessionSecret }}
{{- fail "secrets.sessionSecret is required (at least 32 random characters, e.g. `openssl rand -base64 48`), or name a Secret holding it in secrets.existingSecret" }}
{{- end }}
{{- if and .Values.secrets.clientSecret .Values.secrets.clientPrivateKey }}
{{- fail "secrets.clientSecret and secrets.clientPrivateKey are both set: set one" }}
{{- end }}
{{- if .Values.frontends }}
{{- else if include "bffgate.usesPrivateKey" . }}
{{- if not .Values.secrets.clientPrivateKey }}
{{- fail "config.BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD is private_key_jwt: set secrets.clientPrivateKey (or secrets.existingSecret)" }}
{{- end }}
{{- else if not .Values.secrets.clientSecret }}
{{- fail "secrets.clientSecret is required (or secrets.clientPrivateKey for private_key_jwt, or secrets.existingSecret)" }}
{{- end }}
{{- if and (ne (include "bffgate.ssfDelivery" .) "none") (not .Values.secrets.ssfAuthorization) }}
{{- fail "config.BFF_SSF_DELIVERY is push or poll: set secrets.ssfAuthorization (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.redis.mode "sentinel") (not .Values.redis.sentinel.nodes) }}
{{- fail "redis.mode is sentinel: list the sentinels as host:port in redis.sentinel.nodes" }}
{{- end }}
{{- if and (eq .Values.redis.mode "cluster") (not .Values.redis.cluster.nodes) }}
{{- fail "redis.mode is cluster: list seed nodes as host:port in redis.cluster.nodes" }}
{{- end }}
{{- if and .Values.redis.password .Values.redis.existingSecret }}
{{- fail "redis.password and redis.existingSecret are both set: set one" }}
{{- end }}
{{- if eq (toString (index $config "BFF_SESSION_STORE" | default "")) "memory" }}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- fail "config.BFF_SESSION_STORE=memory keeps sessions inside one pod: use it only with replicaCount: 1 and autoscaling.enabled: false (development), or keep the default redis store" }}
{{- end }}
{{- end }}
{{- end }}
