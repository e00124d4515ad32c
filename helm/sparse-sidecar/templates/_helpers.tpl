{{/* Names ---------------------------------------------------------------------------------------- */}}

{{- define "sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sidecar.fullname" -}}
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

{{/* "<fullname>-<suffix>", kept within `max` (default 63) characters: Service and Deployment names are DNS labels. */}}
{{- define "sidecar.componentName" -}}
{{- $suffix := .suffix | trunc 40 | trimSuffix "-" }}
{{- $max := int (default 63 .max) }}
{{- printf "%s-%s" (include "sidecar.fullname" .root | trunc (int (sub (sub $max 1) (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels --------------------------------------------------------------------------------------- */}}

{{/* Selector labels; `component` is api | worker | backfill, `worker` the worker's name. */}}
{{- define "sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sidecar.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .worker }}
sparse-sidecar/worker: {{ . }}
{{- end }}
{{- end }}

{{- define "sidecar.labels" -}}
{{ include "sidecar.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: sparse-sidecar
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Values helpers ------------------------------------------------------------------------------- */}}

{{/* Deep-merge `src` into the map `dst` in place. Unlike sprig's merge, false / 0 / "" in `src` win. */}}
{{- define "sidecar.mergeInto" -}}
{{- $dst := .dst }}
{{- range $key, $value := .src }}
{{- $current := get $dst $key }}
{{- if and (kindIs "map" $value) (kindIs "map" $current) }}
{{- include "sidecar.mergeInto" (dict "dst" $current "src" $value) }}
{{- else }}
{{- $_ := set $dst $key $value }}
{{- end }}
{{- end }}
{{- end }}

{{/* The merged settings of one worker, as YAML (use with fromYaml). */}}
{{- define "sidecar.workerValues" -}}
{{- $merged := deepCopy .root.Values.workerDefaults }}
{{- include "sidecar.mergeInto" (dict "dst" $merged "src" (default dict .worker)) }}
{{- if not $merged.pipelines }}
{{- $_ := set $merged "pipelines" (list .name) }}
{{- end }}
{{- toYaml $merged }}
{{- end }}

{{- define "sidecar.image" -}}
{{- $image := .root.Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- $tag := default .root.Chart.AppVersion $image.tag }}
{{- if gt (int .gpu) 0 }}
{{- $tag = printf "%s%s" $tag $image.cudaTagSuffix }}
{{- end }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{- define "sidecar.pipelinePath" -}}
/etc/sidecar/pipelines/{{ . }}.yaml
{{- end }}

{{/* Fails the render when a pipeline name has no entry in .Values.pipelines. */}}
{{- define "sidecar.requirePipeline" -}}
{{- if not (hasKey .root.Values.pipelines .name) }}
{{- fail (printf "%s refers to pipeline %q, which is not defined under `pipelines` (defined: %s)" .where .name (keys .root.Values.pipelines | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}

{{- define "sidecar.apiKeysEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.apiKeys }}true{{ end }}
{{- end }}

{{- define "sidecar.apiKeysSecretName" -}}
{{- .Values.auth.existingSecret | default (include "sidecar.componentName" (dict "root" . "suffix" "api-keys")) }}
{{- end }}

{{- define "sidecar.credentialsSecretName" -}}
{{- include "sidecar.componentName" (dict "root" . "suffix" "credentials") }}
{{- end }}

{{/* Pod template --------------------------------------------------------------------------------- */}}

{{/*
One pod template for every component, so security settings, volumes and env never drift apart.
Context: root, c (component values), component (api|worker|backfill), worker (name or ""),
args (list), port (int, 0 = none), portName, probes (bool), apiKeys (bool), restartPolicy,
pipelineNames (the pipelines the pod runs; empty = all).
*/}}
{{- define "sidecar.podTemplate" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $gpu := int (default 0 $c.gpu) }}
metadata:
  labels:
    {{- include "sidecar.selectorLabels" (dict "root" $root "component" .component "worker" .worker) | nindent 4 }}
    app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* Roll pods when their own pipeline files change, not when an unrelated one does. */}}
    {{- $pipelines := $root.Values.pipelines }}
    {{- if .pipelineNames }}
    {{- $pipelines = dict }}
    {{- range .pipelineNames }}{{ $_ := set $pipelines . (get $root.Values.pipelines .) }}{{ end }}
    {{- end }}
    checksum/pipelines: {{ toJson $pipelines | sha256sum }}
    checksum/secrets: {{ include (print $root.Template.BasePath "/secrets.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sidecar.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  {{- with $c.terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ int . }}
  {{- end }}
  {{- with $c.runtimeClassName }}
  runtimeClassName: {{ . }}
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $tolerations := default list $c.tolerations }}
  {{- $gpuTolerated := false }}
  {{- range $tolerations }}{{ if eq (toString .key) "nvidia.com/gpu" }}{{ $gpuTolerated = true }}{{ end }}{{ end }}
  {{- if and (gt $gpu 0) (not $gpuTolerated) }}
  {{- /* GPU node pools are usually tainted nvidia.com/gpu:NoSchedule. */}}
  {{- $tolerations = append $tolerations (dict "key" "nvidia.com/gpu" "operator" "Exists" "effect" "NoSchedule") }}
  {{- end }}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: sidecar
      image: {{ include "sidecar.image" (dict "root" $root "gpu" $gpu) | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["sidecar"]
      args:
        {{- toYaml .args | nindent 8 }}
      {{- if .port }}
      ports:
        - name: {{ .portName }}
          containerPort: {{ int .port }}
          protocol: TCP
      {{- end }}
      env:
        {{- include "sidecar.env" . | trim | nindent 8 }}
      {{- if or $root.Values.credentials.env $root.Values.credentials.existingSecret }}
      envFrom:
        {{- if $root.Values.credentials.env }}
        - secretRef:
            name: {{ include "sidecar.credentialsSecretName" $root }}
        {{- end }}
        {{- with $root.Values.credentials.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      {{- end }}
      {{- if .probes }}
      startupProbe:
        httpGet: {path: /_sidecar/health/live, port: {{ .portName }}}
        {{- toYaml $c.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet: {path: /_sidecar/health/live, port: {{ .portName }}}
        {{- toYaml $c.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet: {path: /_sidecar/health/ready, port: {{ .portName }}}
        {{- toYaml $c.probes.readiness | nindent 8 }}
      {{- end }}
      resources:
        {{- $resources := deepCopy (default dict $c.resources) }}
        {{- if gt $gpu 0 }}
        {{- $_ := set $resources "limits" (merge (dict "nvidia.com/gpu" $gpu) (default dict $resources.limits)) }}
        {{- $_ := set $resources "requests" (merge (dict "nvidia.com/gpu" $gpu) (default dict $resources.requests)) }}
        {{- end }}
        {{- toYaml $resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        - {name: data, mountPath: /var/lib/sidecar}
        {{- if $root.Values.pipelines }}
        - {name: pipelines, mountPath: /etc/sidecar/pipelines, readOnly: true}
        {{- end }}
        {{- if .apiKeys }}
        - {name: api-keys, mountPath: /etc/sidecar/auth, readOnly: true}
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    - name: data
      emptyDir: {}
    {{- if $root.Values.pipelines }}
    - name: pipelines
      configMap:
        name: {{ include "sidecar.componentName" (dict "root" $root "suffix" "pipelines") }}
    {{- end }}
    {{- if .apiKeys }}
    - name: api-keys
      secret:
        secretName: {{ include "sidecar.apiKeysSecretName" $root }}
        defaultMode: 288  # 0440: readable by the pod's fsGroup only
        items:
          - key: {{ $root.Values.auth.existingSecretKey }}
            path: api-keys
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
Container environment: SIDECAR_* settings from config, then config.env, then the component's env
(later wins; each name appears once, sorted, so renders are stable).
*/}}
{{- define "sidecar.env" -}}
{{- $root := .root }}
{{- $cfg := $root.Values.config }}
{{- $env := dict "SIDECAR_LOG_LEVEL" $cfg.logLevel "SIDECAR_LOG_JSON" $cfg.logJson "SIDECAR_DEVICE" $cfg.device "SIDECAR_REGISTRY_PATH" "/var/lib/sidecar/endpoints.sqlite3" }}
{{- with $cfg.kafkaBootstrap }}{{ $_ := set $env "SIDECAR_KAFKA_BOOTSTRAP" . }}{{ end }}
{{- with $cfg.elasticsearchUrl }}{{ $_ := set $env "SIDECAR_ES_URL" . }}{{ end }}
{{- with $cfg.opensearchUrl }}{{ $_ := set $env "SIDECAR_OPENSEARCH_URL" . }}{{ end }}
{{- with $cfg.registry.index }}{{ $_ := set $env "SIDECAR_REGISTRY_INDEX" . }}{{ end }}
{{- with $cfg.registry.engineUrl }}{{ $_ := set $env "SIDECAR_REGISTRY_ENGINE_URL" . }}{{ end }}
{{- with $cfg.modelAliases }}{{ $_ := set $env "SIDECAR_MODEL_ALIASES" (toJson .) }}{{ end }}
{{- if gt (int (default 0 .c.gpu)) 0 }}{{ $_ := set $env "SIDECAR_DEVICE" "cuda" }}{{ end }}
{{- if .apiKeys }}{{ $_ := set $env "SIDECAR_API_KEYS_FILE" "/etc/sidecar/auth/api-keys" }}{{ end }}
{{- range $name, $value := $cfg.env }}{{ $_ := set $env $name $value }}{{ end }}
{{- range $name, $value := .c.env }}{{ $_ := set $env $name $value }}{{ end }}
{{- range $name := keys $env | sortAlpha }}
- name: {{ $name }}
  value: {{ get $env $name | toString | quote }}
{{- end }}
{{- $requests := (default dict .c.resources).requests | default dict }}
{{- if and $requests.cpu (not (hasKey $env "SIDECAR_TORCH_THREADS")) }}
# torch would otherwise start one thread per node core, not per core the pod asked for.
- name: SIDECAR_TORCH_THREADS
  valueFrom:
    resourceFieldRef:
      containerName: sidecar
      resource: requests.cpu
      divisor: "1"
{{- end }}
{{- if eq .component "backfill" }}
- name: SIDECAR_BACKFILL_SLICE
  valueFrom:
    fieldRef:
      fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
{{- end }}
{{- end }}

{{- define "sidecar.intOrPercent" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ int . }}{{ end }}
{{- end }}

{{/* Egress rules when restricted: DNS first (or nothing resolves), then the user's rules. */}}
{{- define "sidecar.egressRules" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{ toYaml .Values.networkPolicy.egress }}
{{- end }}

{{/* The backfill Job's name: pods are named <job>-<index>, and that hostname must stay a DNS label. */}}
{{- define "sidecar.backfillJobName" -}}
{{- $digits := len (toString (sub (int .Values.backfill.slices) 1)) }}
{{- include "sidecar.componentName" (dict "root" . "suffix" (printf "backfill-r%d" (int .Release.Revision)) "max" (sub 62 $digits)) }}
{{- end }}
