{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "border0-reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "border0-reconciler.fullname" -}}
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

{{- define "border0-reconciler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "border0-reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "border0-reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "border0-reconciler.labels" -}}
helm.sh/chart: {{ include "border0-reconciler.chart" . }}
{{ include "border0-reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "border0-reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "border0-reconciler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the border0 token; fails early when there is none. */}}
{{- define "border0-reconciler.tokenSecretName" -}}
{{- if .Values.border0.existingSecret }}
{{- .Values.border0.existingSecret }}
{{- else if .Values.border0.token }}
{{- printf "%s-token" (include "border0-reconciler.fullname" .) }}
{{- else }}
{{- fail "border0 token missing: set border0.existingSecret (recommended) or border0.token" }}
{{- end }}
{{- end }}

{{- define "border0-reconciler.tokenSecretKey" -}}
{{- if .Values.border0.existingSecret }}
{{- .Values.border0.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{- define "border0-reconciler.configMapName" -}}
{{- default (printf "%s-manifests" (include "border0-reconciler.fullname" .)) .Values.manifests.configMap.name }}
{{- end }}

{{/* The directory the reconciler runs on: /git/<link>/<path> or /manifests. */}}
{{- define "border0-reconciler.manifestPath" -}}
{{- if .Values.gitSync.enabled }}
{{- $sub := .Values.gitSync.path | trimPrefix "/" | trimSuffix "/" }}
{{- if $sub }}
{{- printf "/git/%s/%s" .Values.gitSync.link $sub }}
{{- else }}
{{- printf "/git/%s" .Values.gitSync.link }}
{{- end }}
{{- else }}
{{- "/manifests" }}
{{- end }}
{{- end }}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "border0-reconciler.validate" -}}
{{- if and .Values.gitSync.enabled .Values.manifests.configMap.enabled }}
{{- fail "choose one manifest source: gitSync.enabled or manifests.configMap.enabled, not both" }}
{{- end }}
{{- if not (or .Values.gitSync.enabled .Values.manifests.configMap.enabled) }}
{{- fail "no manifest source: enable gitSync (set gitSync.repo) or manifests.configMap" }}
{{- end }}
{{- if and .Values.gitSync.enabled (not .Values.gitSync.repo) }}
{{- fail "gitSync.repo is required: the URL of the repository holding the manifests" }}
{{- end }}
{{- if and .Values.gitSync.enabled (ne .Values.gitSync.auth.type "none") (not .Values.gitSync.auth.existingSecret) }}
{{- fail (printf "gitSync.auth.existingSecret is required with gitSync.auth.type=%s" .Values.gitSync.auth.type) }}
{{- end }}
{{- if and .Values.manifests.configMap.enabled (not .Values.manifests.configMap.name) (not .Values.manifests.configMap.files) }}
{{- fail "manifests.configMap needs a name (existing ConfigMap) or files (the chart creates it)" }}
{{- end }}
{{- if and .Values.gitSync.enabled .Values.gitSync.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "gitSync.nativeSidecar needs Kubernetes >= 1.29 (this cluster: %s); set it to false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled: only the lease holder may write" }}
{{- end }}
{{- $agents := dict }}
{{- range .Values.connectorAgents }}
{{- if hasKey $agents .name }}
{{- fail (printf "connectorAgents: the name %s is used twice" .name) }}
{{- end }}
{{- $_ := set $agents .name true }}
{{- end }}
{{- if eq .Values.reconciler.port .Values.gitSync.httpPort }}
{{- fail "reconciler.port and gitSync.httpPort must differ" }}
{{- end }}
{{- end }}

{{/* The git-sync container without its name, restartPolicy, ports and probes.
Called with (dict "ctx" $ "oneTime" bool): the init container syncs once, the sidecar keeps
syncing and serves its HTTP endpoint. */}}
{{- define "border0-reconciler.gitSyncBody" -}}
{{- $oneTime := .oneTime }}
{{- with .ctx -}}
image: "{{ .Values.gitSync.image.repository }}:{{ .Values.gitSync.image.tag }}"
imagePullPolicy: {{ .Values.gitSync.image.pullPolicy }}
env:
  - name: GITSYNC_REPO
    value: {{ .Values.gitSync.repo | quote }}
  - name: GITSYNC_REF
    value: {{ .Values.gitSync.ref | quote }}
  - name: GITSYNC_ROOT
    value: /git
  - name: GITSYNC_LINK
    value: {{ .Values.gitSync.link | quote }}
  - name: GITSYNC_PERIOD
    value: {{ .Values.gitSync.period | quote }}
  - name: GITSYNC_DEPTH
    value: {{ .Values.gitSync.depth | quote }}
  - name: GITSYNC_MAX_FAILURES
    value: {{ .Values.gitSync.maxFailures | quote }}
  {{- if eq .Values.gitSync.auth.type "https" }}
  - name: GITSYNC_USERNAME
    value: {{ .Values.gitSync.auth.username | quote }}
  - name: GITSYNC_PASSWORD_FILE
    value: /etc/git-secret/password
  {{- else if eq .Values.gitSync.auth.type "ssh" }}
  - name: GITSYNC_SSH_KEY_FILE
    value: /etc/git-secret/ssh
  - name: GITSYNC_SSH_KNOWN_HOSTS
    value: {{ .Values.gitSync.auth.knownHosts | quote }}
  {{- if .Values.gitSync.auth.knownHosts }}
  - name: GITSYNC_SSH_KNOWN_HOSTS_FILE
    value: /etc/git-secret/known_hosts
  {{- end }}
  {{- end }}
  {{- if $oneTime }}
  - name: GITSYNC_ONE_TIME
    value: "true"
  {{- else }}
  - name: GITSYNC_HTTP_BIND
    value: ":{{ .Values.gitSync.httpPort }}"
  {{- end }}
  {{- with .Values.gitSync.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .Values.gitSync.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.gitSync.securityContext | nindent 2 }}
volumeMounts:
  - name: git
    mountPath: /git
  - name: git-sync-tmp
    mountPath: /tmp
  {{- if ne .Values.gitSync.auth.type "none" }}
  - name: git-secret
    mountPath: /etc/git-secret
    readOnly: true
  {{- end }}
{{- end }}
{{- end }}

{{/* Pod annotations: checksums that roll the pod when the chart's Secret or a ConfigMap it reads
changes (ctx = the root context, agent = nil for the writer). */}}
{{- define "border0-reconciler.podAnnotations" -}}
{{- $agent := .agent }}
{{- with .ctx }}
{{- $a := dict }}
{{- if and (not .Values.border0.existingSecret) .Values.border0.token }}
{{- $_ := set $a "checksum/token" (include (print .Template.BasePath "/secret.yaml") . | sha256sum) }}
{{- end }}
{{- if and .Values.manifests.configMap.enabled (not .Values.manifests.configMap.name) }}
{{- $_ := set $a "checksum/manifests" (include (print .Template.BasePath "/configmap.yaml") . | sha256sum) }}
{{- end }}
{{- /* read once at startup: a new window needs a new pod (the writer only reads it) */}}
{{- if and (not $agent) .Values.reconciler.syncWindows }}
{{- $_ := set $a "checksum/sync-windows" (include (print .Template.BasePath "/sync-windows.yaml") . | sha256sum) }}
{{- end }}
{{- $a = merge $a .Values.podAnnotations }}
{{- if $a }}
{{- toYaml $a }}
{{- end }}
{{- end }}
{{- end }}

{{/* `run` flags only the writer takes: dry run, leader election, no connectors, the trigger. */}}
{{- define "border0-reconciler.writerArgs" -}}
{{- if .Values.reconciler.dryRun }}
- --dry-run
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
- --lease-name
- {{ default (include "border0-reconciler.fullname" .) .Values.leaderElection.leaseName | quote }}
- --lease-namespace
- {{ .Release.Namespace | quote }}
- --lease-duration
- {{ .Values.leaderElection.leaseDuration | quote }}
- --renew-deadline
- {{ .Values.leaderElection.renewDeadline | quote }}
- --retry-period
- {{ .Values.leaderElection.retryPeriod | quote }}
{{- end }}
{{- if not .Values.reconciler.connectors }}
- --no-connectors
{{- end }}
{{- if .Values.trigger.existingSecret }}
- --trigger-token-file
- /etc/border0-reconciler/trigger/token
{{- end }}
{{- if .Values.reconciler.syncWindows }}
- --sync-windows
- /etc/border0-reconciler/sync-windows/sync-windows.yaml
{{- end }}
{{- end }}

{{/* A connector agent's pod labels: not the writer's, so the Service never routes to it. */}}
{{- define "border0-reconciler.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "border0-reconciler.name" .ctx }}-connector-agent
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
border0-reconciler/agent: {{ .agent.name | quote }}
{{- end }}

{{/* A connector agent's object name: <fullname>-agent-<name>; past 63 characters the fullname
is cut and a hash of the whole name appended (<fullname cut>-agent-<name>-<hash>), so two long
names never end up the same and the agent's name (32 characters at most) stays readable. */}}
{{- define "border0-reconciler.agentFullname" -}}
{{- $fullname := include "border0-reconciler.fullname" .ctx }}
{{- $full := printf "%s-agent-%s" $fullname .agent.name }}
{{- if le (len $full) 63 }}
{{- $full }}
{{- else }}
{{- $suffix := printf "-agent-%s-%s" .agent.name (sha256sum $full | trunc 8) }}
{{- regexReplaceAll "-+$" ($fullname | trunc (int (sub 63 (len $suffix)))) "" }}{{ $suffix }}
{{- end }}
{{- end }}

{{/* The connector agents' PodMonitor, and the job label of their series. */}}
{{- define "border0-reconciler.agentsMonitorName" -}}
{{- regexReplaceAll "-+$" (printf "%s-connector-agent" (include "border0-reconciler.fullname" .) | trunc 63) "" }}
{{- end }}

{{/* The volume of a connector token Secret (a name of up to 253 characters, with dots): a valid
DNS label, readable, and unique by a hash of the whole Secret name. */}}
{{- define "border0-reconciler.tokenVolumeName" -}}
{{- printf "token-%s-%s" (regexReplaceAll "-+$" (. | replace "." "-" | trunc 30) "") (sha256sum . | trunc 8) }}
{{- end }}

{{/* The reconciler's image: repository:tag, repository@digest, or repository:tag@digest. */}}
{{- define "border0-reconciler.image" -}}
{{- $tag := .Values.image.tag | default (ternary "" .Chart.AppVersion (ne .Values.image.digest "")) -}}
{{- .Values.image.repository -}}
{{- with $tag }}:{{ . }}{{ end -}}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end }}

{{/* Replicas of the writer on different nodes: a node lost takes at most one of them. */}}
{{- define "border0-reconciler.podAntiAffinity" -}}
podAntiAffinity:
  {{- if eq .Values.podAntiAffinity "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "border0-reconciler.selectorLabels" . | nindent 10 }}
  {{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "border0-reconciler.selectorLabels" . | nindent 12 }}
  {{- end }}
{{- end }}
