{{/* The pod of the writer (agent = nil) or of a connector agent (agent = one entry of
connectorAgents): one template, so both read the manifests the same way (git-sync or ConfigMap).
Output keeps the indentation of a Deployment's spec.template. */}}
{{- define "border0-reconciler.podTemplate" -}}
{{- $agent := .agent }}
{{- with .ctx }}
    metadata:
      {{- with include "border0-reconciler.podAnnotations" (dict "ctx" . "agent" $agent) }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
      labels:
        {{- if $agent }}
        {{- include "border0-reconciler.agentSelectorLabels" (dict "ctx" . "agent" $agent) | nindent 8 }}
        {{- else }}
        {{- include "border0-reconciler.selectorLabels" . | nindent 8 }}
        {{- end }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "border0-reconciler.serviceAccountName" . }}
      # Only the writer talks to the Kubernetes API: the leader election (Leases) and the
      # connector token Secrets it writes. Agents read those Secrets as mounted volumes.
      automountServiceAccountToken: {{ or .Values.serviceAccount.automountServiceAccountToken (and (not $agent) (or .Values.leaderElection.enabled (not (empty .Values.reconciler.tokenSecrets)))) }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      {{- if .Values.gitSync.enabled }}
      initContainers:
        {{- if .Values.gitSync.nativeSidecar }}
        # Native sidecar: started first, kept running, stopped after the reconciler. Its startup
        # probe succeeds after the first sync, so the reconciler starts on a complete checkout.
        - name: git-sync
          restartPolicy: Always
          {{- include "border0-reconciler.gitSyncBody" (dict "ctx" . "oneTime" false) | nindent 10 }}
          ports:
            - name: git-sync
              containerPort: {{ .Values.gitSync.httpPort }}
              protocol: TCP
          startupProbe:
            httpGet:
              path: /
              port: git-sync
            periodSeconds: 2
            failureThreshold: 150
        {{- else }}
        # The first sync, so the reconciler starts on a complete checkout.
        - name: git-sync-init
          {{- include "border0-reconciler.gitSyncBody" (dict "ctx" . "oneTime" true) | nindent 10 }}
        {{- end }}
      {{- end }}
      containers:
        - name: reconciler
          image: {{ include "border0-reconciler.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - run
            - {{ include "border0-reconciler.manifestPath" . | quote }}
            - --listen
            - "0.0.0.0:{{ .Values.reconciler.port }}"
            - --instance
            - {{ .Values.reconciler.instance | quote }}
            - --interval
            - {{ .Values.reconciler.interval | quote }}
            - --full-refresh-interval
            - {{ .Values.reconciler.fullRefreshInterval | quote }}
            - --log-format
            - {{ .Values.reconciler.logFormat | quote }}
            {{- if $agent }}
            - --connectors-only
            - --connector-selector
            - {{ $agent.selector | quote }}
            {{- range $agent.connectors }}
            - --connector
            - {{ . | quote }}
            {{- end }}
            {{- else }}
            {{- include "border0-reconciler.writerArgs" . | nindent 12 }}
            {{- end }}
            {{- with .Values.reconciler.connectorCommand }}
            - --connector-command
            - {{ . | quote }}
            {{- end }}
            {{- if not (kindIs "invalid" .Values.reconciler.maxDelete) }}
            - --max-delete
            - {{ .Values.reconciler.maxDelete | quote }}
            {{- end }}
            {{- if .Values.reconciler.allowMassDelete }}
            - --allow-mass-delete
            {{- end }}
            {{- if not .Values.reconciler.managePolicies }}
            - --no-policies
            {{- end }}
            {{- range .Values.reconciler.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            - name: POD_NAME  # the leader election's identity
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: BORDER0_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "border0-reconciler.tokenSecretName" . }}
                  key: {{ include "border0-reconciler.tokenSecretKey" . }}
            {{- if .Values.border0.fingerprintKeySecret }}
            - name: BORDER0_RECONCILER_FINGERPRINT_KEY  # keys the secret fingerprints in tags
              valueFrom:
                secretKeyRef:
                  name: {{ .Values.border0.fingerprintKeySecret | quote }}
                  key: {{ .Values.border0.fingerprintKeySecretKey | quote }}
            {{- end }}
            {{- with .Values.border0.api }}
            - name: BORDER0_API
              value: {{ . | quote }}
            {{- end }}
            {{- if get ($agent | default dict) "tokenSecrets" }}
            - name: BORDER0_RECONCILER_SECRET_MOUNTS  # the connector token Secrets below
              value: /var/run/border0-reconciler/secrets
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with .Values.extraEnvFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.reconciler.port }}
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml .Values.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml .Values.readinessProbe | nindent 12 }}
          {{- with (get ($agent | default dict) "resources" | default .Values.resources) }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if .Values.gitSync.enabled }}
            - name: git
              mountPath: /git
              readOnly: true
            {{- else }}
            - name: manifests
              mountPath: /manifests
              readOnly: true
            {{- end }}
            {{- if and (not $agent) .Values.trigger.existingSecret }}
            - name: trigger-token
              mountPath: /etc/border0-reconciler/trigger
              readOnly: true
            {{- end }}
            {{- if and (not $agent) .Values.reconciler.syncWindows }}
            - name: sync-windows
              mountPath: /etc/border0-reconciler/sync-windows
              readOnly: true
            {{- end }}
            {{- range (get ($agent | default dict) "tokenSecrets" | default list) }}
            - name: {{ include "border0-reconciler.tokenVolumeName" . }}
              mountPath: /var/run/border0-reconciler/secrets/{{ . }}
              readOnly: true
            {{- end }}
            {{- with .Values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
        {{- if and .Values.gitSync.enabled (not .Values.gitSync.nativeSidecar) }}
        - name: git-sync
          {{- include "border0-reconciler.gitSyncBody" (dict "ctx" . "oneTime" false) | nindent 10 }}
          ports:
            - name: git-sync
              containerPort: {{ .Values.gitSync.httpPort }}
              protocol: TCP
        {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if .Values.gitSync.enabled }}
        - name: git
          emptyDir: {}
        - name: git-sync-tmp
          emptyDir: {}
        {{- if ne .Values.gitSync.auth.type "none" }}
        - name: git-secret
          secret:
            secretName: {{ .Values.gitSync.auth.existingSecret }}
            # 0440: readable by the pod's fsGroup (git-sync), nobody else.
            defaultMode: 288
            items:
              {{- if eq .Values.gitSync.auth.type "https" }}
              - key: {{ .Values.gitSync.auth.passwordKey }}
                path: password
              {{- else }}
              - key: {{ .Values.gitSync.auth.sshKeyKey }}
                path: ssh
              {{- if .Values.gitSync.auth.knownHosts }}
              - key: {{ .Values.gitSync.auth.knownHostsKey }}
                path: known_hosts
              {{- end }}
              {{- end }}
        {{- end }}
        {{- else }}
        - name: manifests
          configMap:
            name: {{ include "border0-reconciler.configMapName" . }}
        {{- end }}
        {{- if and (not $agent) .Values.trigger.existingSecret }}
        - name: trigger-token
          secret:
            secretName: {{ .Values.trigger.existingSecret }}
            defaultMode: 288
            items:
              - key: {{ .Values.trigger.existingSecretKey }}
                path: token
        {{- end }}
        {{- if and (not $agent) .Values.reconciler.syncWindows }}
        - name: sync-windows
          configMap:
            name: {{ include "border0-reconciler.fullname" . }}-sync-windows
        {{- end }}
        {{- range (get ($agent | default dict) "tokenSecrets" | default list) }}
        # A connector token the writer keeps (destination kubernetesSecret); optional, so the
        # agent starts before the writer's first apply and reads the token once it is there.
        - name: {{ include "border0-reconciler.tokenVolumeName" . }}
          secret:
            secretName: {{ . }}
            optional: true
            defaultMode: 288
        {{- end }}
        {{- with .Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with (get ($agent | default dict) "nodeSelector" | default .Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (get ($agent | default dict) "affinity" | default .Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- else }}
      {{- if and (not $agent) (gt (int .Values.replicaCount) 1) .Values.podAntiAffinity }}
      affinity:
        {{- include "border0-reconciler.podAntiAffinity" . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- with (get ($agent | default dict) "tolerations" | default .Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
