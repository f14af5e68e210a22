{{/*
entitle library chart. Every template takes the parent chart's root context (`.`) and reads its
`.Values.entitle` block:

  entitle:
    image: {repository: <registry>/entitle, tag: "0.1.0", digest: "", pullPolicy: IfNotPresent}
    productCode: prod-abc123          # required
    publicKeyVersion: 1
    publicKey: |                      # PEM from the AWS Marketplace Management Portal, rendered
      -----BEGIN PUBLIC KEY-----      #   into a ConfigMap by "entitle.configMap"; or name an
      ...                             #   existing ConfigMap with existingConfigMap (key: publicKeyKey).
    existingConfigMap: ""             #   A key is required unless the product is metered (below).
    publicKeyKey: product-key.pem
    region: ""                        # AWS_REGION; empty: the EKS IRSA webhook sets it
    disableIMDS: true                 # AWS_EC2_METADATA_DISABLED=true (IRSA does not need IMDS)
    timeout: 30m                      # ENTITLE_TIMEOUT (also sizes the metering sidecar's startupProbe)
    logFormat: json                   # ENTITLE_LOG_FORMAT
    recordDir: /var/run/entitle       # init mode: where the app finds record.json (read-only)
    binDir: /.entitle                 # wrapper mode: where the app finds the entitle binary (an
                                      #   emptyDir mounted over it, so a path no app image uses)
    extraEnv: []                      # more env for entitle (e.g. AWS_ENDPOINT_URL_MARKETPLACE_METERING)
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
    meter:                            # custom metering (MeterUsage); off while dimensions is empty
      dimensions: []                  # the product's pricing dimensions, 1..24 names
      mode: sidecar                   # sidecar: `entitle meter` as a native sidecar (Kubernetes >= 1.29)
                                      # run: the relay inside `entitle run` (wrapper mode only)
      port: 8787                      # the relay listens on 127.0.0.1:PORT (loopback only, in both
                                      #   modes); the app reports to http://127.0.0.1:PORT
      flushTimeout: 20s               # ENTITLE_METER_FLUSH_TIMEOUT: sending what is open at a stop
      stateDir: /.entitle-meter       # the journal (--meter-state), an emptyDir
      stateSizeLimit: 32Mi
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}

Init-container mode (the app image is unchanged):
  initContainers: include "entitle.initContainer"      (first in the list)
  app container:  include "entitle.recordVolumeMount"  (read-only) and "entitle.recordEnv"
  volumes:        include "entitle.volumes"
Wrapper mode (entitle becomes the app's PID 1; the app's image needs no change either):
  initContainers: include "entitle.wrapper.initContainer" (copies the binary into an emptyDir)
  app container:  command: include "entitle.wrapper.command" (dict "root" . "command" LIST)
                  env: include "entitle.env"; volumeMounts: include "entitle.wrapper.volumeMounts"
  volumes:        include "entitle.volumes" (dict "root" . "wrapper" true)
Metering (either mode; each include renders nothing while entitle.meter.dimensions is empty):
  initContainers: include "entitle.meter.sidecar"       (after the entitle-check / entitle-install one)
  app container:  env: include "entitle.meter.appEnv" (dict "root" . "terminationGracePeriodSeconds" N)
                  volumeMounts: include "entitle.meter.appVolumeMounts"
  pod:            terminationGracePeriodSeconds: include "entitle.meter.terminationGracePeriodSeconds"
                    (dict "root" . "seconds" N)   (fails when N leaves no room for the flush)
  volumes:        "entitle.volumes" adds the state emptyDir
  In sidecar mode the relay is the last gate before the app: its startupProbe, an exec probe
  running `/entitle health` inside the sidecar (GET /v1/health on loopback), passes only after the
  MeterUsage dry runs, and the app gets ENTITLE_METER_URL. In run mode
  `entitle run` does the same inside the app container and sets ENTITLE_METER_URL itself.
  RegisterUsage stays with entitle-check / entitle run (when a key is configured); the sidecar
  never gets the key, so a pod registers once.
*/}}

{{/* "true" when a public key is configured (inline or in an existing ConfigMap), else "". */}}
{{- define "entitle.hasKey" -}}
{{- $c := .Values.entitle | default dict -}}
{{- if or $c.publicKey $c.existingConfigMap }}true{{ end -}}
{{- end -}}

{{- define "entitle.values" -}}
{{- $c := .Values.entitle | default dict -}}
{{- $_ := required "entitle.productCode is required (the product code from the AWS Marketplace Management Portal)" $c.productCode -}}
{{- $m := include "entitle.meter.settings" . | fromYaml -}}
{{- if not (or (include "entitle.hasKey" .) $m.enabled) -}}
{{- fail "entitle.publicKey (PEM) or entitle.existingConfigMap is required (or entitle.meter.dimensions for a product priced by custom dimensions only)" -}}
{{- end -}}
{{- end -}}

{{/*
A duration as entitle reads it (`30m`, `90s`, `1h 30m`, `500ms`), in whole seconds (rounded up).
*/}}
{{- define "entitle.durationSeconds" -}}
{{- $text := toString . | trim -}}
{{- if not (regexMatch "^([0-9]+ *[a-z]+ *)+$" $text) -}}
{{- fail (printf "`%s` is not a duration such as 20s, 30m or 1h 30m" $text) -}}
{{- end -}}
{{- $units := dict "ms" 1 "msec" 1 "s" 1000 "sec" 1000 "secs" 1000 "second" 1000 "seconds" 1000 "m" 60000 "min" 60000 "mins" 60000 "minute" 60000 "minutes" 60000 "h" 3600000 "hr" 3600000 "hrs" 3600000 "hour" 3600000 "hours" 3600000 "d" 86400000 "day" 86400000 "days" 86400000 -}}
{{- $ms := 0 -}}
{{- range regexFindAll "[0-9]+ *[a-z]+" $text -1 -}}
{{- $unit := regexFind "[a-z]+" . -}}
{{- if not (hasKey $units $unit) -}}
{{- fail (printf "`%s`: unknown time unit `%s` (use ms, s, m, h or d)" $text $unit) -}}
{{- end -}}
{{- $ms = add $ms (mul (regexFind "[0-9]+" . | atoi) (get $units $unit)) -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{/*
The metering settings with their defaults, checked, as YAML (use: include ... | fromYaml):
enabled, dimensions, mode, port, listen, url, flushTimeout, flushSeconds, stateDir,
stateSizeLimit, resources. The relay listens on loopback in both modes: nothing outside the pod can
report usage (the sidecar's startupProbe runs inside it, so it needs no pod-IP listener).
*/}}
{{- define "entitle.meter.settings" -}}
{{- $c := .Values.entitle | default dict -}}
{{- $m := $c.meter | default dict -}}
{{- $dims := $m.dimensions | default list -}}
{{- if not (kindIs "slice" $dims) -}}
{{- fail "entitle.meter.dimensions must be a list of the product's pricing dimensions, e.g. [scans, gb]" -}}
{{- end -}}
{{- if gt (len $dims) 24 -}}
{{- fail (printf "entitle.meter.dimensions has %d names; a product has at most 24" (len $dims)) -}}
{{- end -}}
{{- range $i, $d := $dims -}}
{{- if not (and (kindIs "string" $d) (regexMatch "^[^,\\s]([^,]{0,253}[^,\\s])?$" $d)) -}}
{{- fail (printf "entitle.meter.dimensions[%d] `%v` must be 1 to 255 characters without commas or surrounding spaces (the names from the AWS Marketplace Management Portal)" $i $d) -}}
{{- end -}}
{{- end -}}
{{- if ne (len $dims) (len (uniq $dims)) -}}
{{- fail "entitle.meter.dimensions names a dimension twice" -}}
{{- end -}}
{{- $mode := $m.mode | default "sidecar" -}}
{{- if not (has $mode (list "sidecar" "run")) -}}
{{- fail (printf "entitle.meter.mode `%s` must be sidecar or run" $mode) -}}
{{- end -}}
{{- $port := $m.port | default 8787 | int -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "entitle.meter.port %d is not a TCP port" $port) -}}
{{- end -}}
{{- $flush := $m.flushTimeout | default "20s" -}}
enabled: {{ gt (len $dims) 0 }}
dimensions: {{ toJson $dims }}
mode: {{ $mode }}
port: {{ $port }}
listen: {{ printf "127.0.0.1:%d" $port | quote }}
url: {{ printf "http://127.0.0.1:%d" $port | quote }}
flushTimeout: {{ $flush | quote }}
flushSeconds: {{ include "entitle.durationSeconds" $flush }}
stateDir: {{ $m.stateDir | default "/.entitle-meter" | quote }}
stateSizeLimit: {{ $m.stateSizeLimit | default "32Mi" | quote }}
resources: {{ $m.resources | default (dict "requests" (dict "cpu" "10m" "memory" "16Mi") "limits" (dict "memory" "64Mi")) | toJson }}
{{- end -}}

{{- define "entitle.image" -}}
{{- $c := .Values.entitle -}}
{{- $img := $c.image | default dict -}}
{{- $repo := required "entitle.image.repository is required" $img.repository -}}
{{- if $img.digest -}}{{ $repo }}@{{ $img.digest }}{{- else -}}{{ $repo }}:{{ $img.tag | default "0.1.0" }}{{- end -}}
{{- end -}}

{{- define "entitle.configMapName" -}}
{{- .Values.entitle.existingConfigMap | default (printf "%s-entitle-key" .Release.Name | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/* The ConfigMap holding the product's public key (nothing with existingConfigMap or no key). */}}
{{- define "entitle.configMap" -}}
{{- include "entitle.values" . -}}
{{- $c := .Values.entitle -}}
{{- if and $c.publicKey (not $c.existingConfigMap) }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "entitle.configMapName" . }}
  labels:
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/component: entitle
data:
  {{ $c.publicKeyKey | default "product-key.pem" }}: |
    {{- $c.publicKey | trim | nindent 4 }}
{{- end }}
{{- end -}}

{{/* Restricted Pod Security Standard container settings. */}}
{{- define "entitle.securityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* env every entitle command shares: product, budget, logs, region, IMDS; no key. */}}
{{- define "entitle.baseEnv" -}}
{{- include "entitle.values" . -}}
{{- $c := .Values.entitle -}}
- name: ENTITLE_PRODUCT_CODE
  value: {{ $c.productCode | quote }}
- name: ENTITLE_TIMEOUT
  value: {{ $c.timeout | default "30m" | quote }}
- name: ENTITLE_LOG_FORMAT
  value: {{ $c.logFormat | default "json" | quote }}
{{- if $c.region }}
- name: AWS_REGION
  value: {{ $c.region | quote }}
{{- end }}
{{- if ne (toString $c.disableIMDS) "false" }}
- name: AWS_EC2_METADATA_DISABLED
  value: "true"
{{- end }}
{{- end -}}

{{/* entitle.extraEnv, last so that it can override what the chart sets. */}}
{{- define "entitle.extraEnv" -}}
{{- with .Values.entitle.extraEnv -}}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* env for entitle check / run (the init container, or the app container in wrapper mode). */}}
{{- define "entitle.env" -}}
{{- $c := .Values.entitle -}}
{{- include "entitle.baseEnv" . }}
{{- if include "entitle.hasKey" . }}
- name: ENTITLE_PUBLIC_KEY_VERSION
  value: {{ $c.publicKeyVersion | default 1 | quote }}
- name: ENTITLE_PUBLIC_KEY_FILE
  value: /etc/entitle/key/{{ $c.publicKeyKey | default "product-key.pem" }}
{{- end }}
{{- with include "entitle.extraEnv" . }}
{{ . }}
{{- end }}
{{- end -}}

{{- define "entitle.keyVolumeMount" -}}
{{- if include "entitle.hasKey" . -}}
- name: entitle-key
  mountPath: /etc/entitle/key
  readOnly: true
{{- end -}}
{{- end -}}

{{/* Init-container mode: `entitle check` writes record.json into the shared emptyDir. */}}
{{- define "entitle.initContainer" -}}
{{- $c := .Values.entitle -}}
{{- if not (include "entitle.hasKey" .) -}}
{{- fail "entitle.initContainer runs RegisterUsage and needs entitle.publicKey or entitle.existingConfigMap; a metered product without a key is gated by its metering sidecar (entitle.meter.sidecar) alone" -}}
{{- end -}}
- name: entitle-check
  image: {{ include "entitle.image" . | quote }}
  imagePullPolicy: {{ ($c.image | default dict).pullPolicy | default "IfNotPresent" }}
  args: ["check", "--output", "/var/run/entitle/record.json"]
  env:
    {{- include "entitle.env" . | nindent 4 }}
  volumeMounts:
    {{- include "entitle.keyVolumeMount" . | nindent 4 }}
    - name: entitle-record
      mountPath: /var/run/entitle
  securityContext:
    {{- include "entitle.securityContext" . | nindent 4 }}
  terminationMessagePolicy: FallbackToLogsOnError
  resources:
    {{- toYaml ($c.resources | default (dict "requests" (dict "cpu" "10m" "memory" "16Mi") "limits" (dict "memory" "64Mi"))) | nindent 4 }}
{{- end -}}

{{/* The app container's read-only view of the record. */}}
{{- define "entitle.recordVolumeMount" -}}
- name: entitle-record
  mountPath: {{ .Values.entitle.recordDir | default "/var/run/entitle" }}
  readOnly: true
{{- end -}}

{{/* Tells the app where the record is (`entitle verify --record` reads ENTITLE_RECORD). */}}
{{- define "entitle.recordEnv" -}}
- name: ENTITLE_RECORD
  value: {{ printf "%s/record.json" (.Values.entitle.recordDir | default "/var/run/entitle") | quote }}
{{- end -}}

{{/*
Pod volumes. Takes the root context (init mode), or (dict "root" . "wrapper" true): the key
(when configured), the record (init mode with a key) or the binary (wrapper mode), and the
metering journal (when metered).
*/}}
{{- define "entitle.volumes" -}}
{{- $root := . -}}
{{- $wrapper := false -}}
{{- if and (kindIs "map" .) (hasKey . "root") -}}
{{- $root = .root -}}
{{- $wrapper = .wrapper -}}
{{- end -}}
{{- $hasKey := include "entitle.hasKey" $root -}}
{{- $m := include "entitle.meter.settings" $root | fromYaml -}}
{{- if and $m.enabled (eq $m.mode "run") (not $wrapper) -}}
{{- fail "entitle.meter.mode run meters inside `entitle run`, i.e. wrapper mode; with an init container use entitle.meter.mode sidecar" -}}
{{- end -}}
{{- if $hasKey }}
- name: entitle-key
  configMap:
    name: {{ include "entitle.configMapName" $root }}
    items:
      - key: {{ $root.Values.entitle.publicKeyKey | default "product-key.pem" }}
        path: {{ $root.Values.entitle.publicKeyKey | default "product-key.pem" }}
{{- end }}
{{- if $wrapper }}
- name: entitle-bin
  emptyDir:
    sizeLimit: 16Mi
{{- else if $hasKey }}
- name: entitle-record
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end }}
{{- if $m.enabled }}
# The metering journal: usage the relay acknowledged and has not yet sent lives here, so a
# restarted relay sends it (disk-backed: it survives container restarts, not the pod).
- name: entitle-meter-state
  emptyDir:
    sizeLimit: {{ $m.stateSizeLimit }}
{{- end }}
{{- end -}}

{{/* Wrapper mode: an init container that installs the entitle binary into the entitle-bin emptyDir. */}}
{{- define "entitle.wrapper.initContainer" -}}
{{- $c := .Values.entitle -}}
- name: entitle-install
  image: {{ include "entitle.image" . | quote }}
  imagePullPolicy: {{ ($c.image | default dict).pullPolicy | default "IfNotPresent" }}
  args: ["install", "/entitle-bin"]
  volumeMounts:
    - name: entitle-bin
      mountPath: /entitle-bin
  securityContext:
    {{- include "entitle.securityContext" . | nindent 4 }}
  terminationMessagePolicy: FallbackToLogsOnError
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 32Mi}
{{- end -}}

{{/*
Wrapper mode: the app container's command, as a JSON list: entitle run -- COMMAND... The binary
is at binDir (default /.entitle: an emptyDir is mounted there, hiding whatever the app image has
at that path, so the default is one no image uses; /entitle was one a vendor image may hold).
*/}}
{{- define "entitle.wrapper.command" -}}
{{- $dir := .root.Values.entitle.binDir | default "/.entitle" -}}
{{- $cmd := required "the app's command is required in wrapper mode (entitle run -- COMMAND)" .command -}}
{{- $m := include "entitle.meter.settings" .root | fromYaml -}}
{{- if not (or (include "entitle.hasKey" .root) (and $m.enabled (eq $m.mode "run"))) -}}
{{- fail "wrapper mode: `entitle run` registers with RegisterUsage and needs entitle.publicKey or entitle.existingConfigMap, unless it meters itself (entitle.meter.mode run)" -}}
{{- end -}}
{{- concat (list (printf "%s/entitle" $dir) "run" "--") $cmd | toJson -}}
{{- end -}}

{{- define "entitle.wrapper.volumeMounts" -}}
{{- with include "entitle.keyVolumeMount" . }}
{{ . }}
{{- end }}
- name: entitle-bin
  mountPath: {{ .Values.entitle.binDir | default "/.entitle" }}
  readOnly: true
{{- end -}}

{{/* The relay's env: dimensions, where it listens, its journal, its flush budget (each unless
entitle.extraEnv sets it). */}}
{{- define "entitle.meter.relayEnv" -}}
{{- $m := include "entitle.meter.settings" . | fromYaml -}}
{{- $given := list -}}
{{- range (.Values.entitle.extraEnv | default list) }}{{ $given = append $given .name }}{{ end -}}
{{- $vars := list
      (list "ENTITLE_METER_DIMENSIONS" (join "," $m.dimensions))
      (list "ENTITLE_METER_LISTEN" $m.listen)
      (list "ENTITLE_METER_STATE" $m.stateDir)
      (list "ENTITLE_METER_FLUSH_TIMEOUT" $m.flushTimeout) -}}
{{- range $vars }}
{{- if not (has (index . 0) $given) }}
- name: {{ index . 0 }}
  value: {{ index . 1 | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The sidecar's startupProbe command, as a JSON list: `/entitle health` (the entitle image's binary),
run by the kubelet inside the sidecar, where the relay's loopback listener is. It follows the
relay's listen address: ENTITLE_METER_LISTEN from entitle.extraEnv if given (unix:/PATH as is, a
wildcard address probed on loopback), else 127.0.0.1:PORT; `--meter-url` is added unless that is
the default, http://127.0.0.1:8787 (or when entitle.extraEnv sets ENTITLE_METER_URL, which the
flag overrides).
*/}}
{{- define "entitle.meter.probeCommand" -}}
{{- $m := include "entitle.meter.settings" . | fromYaml -}}
{{- $listen := $m.listen -}}
{{- $pinned := false -}}
{{- range (.Values.entitle.extraEnv | default list) -}}
{{- if eq .name "ENTITLE_METER_LISTEN" }}{{ $listen = toString .value }}{{ end -}}
{{- if eq .name "ENTITLE_METER_URL" }}{{ $pinned = true }}{{ end -}}
{{- end -}}
{{- $url := "" -}}
{{- if hasPrefix "unix:" $listen -}}
{{- $url = $listen -}}
{{- else if hasPrefix "0.0.0.0:" $listen -}}
{{- $url = printf "http://127.0.0.1:%s" (trimPrefix "0.0.0.0:" $listen) -}}
{{- else if hasPrefix "[::]:" $listen -}}
{{- $url = printf "http://[::1]:%s" (trimPrefix "[::]:" $listen) -}}
{{- else -}}
{{- $url = printf "http://%s" $listen -}}
{{- end -}}
{{- if or $pinned (ne $url "http://127.0.0.1:8787") -}}
{{- list "/entitle" "health" "--meter-url" $url | toJson -}}
{{- else -}}
{{- list "/entitle" "health" | toJson -}}
{{- end -}}
{{- end -}}

{{/*
Metering, sidecar mode: `entitle meter` as a Kubernetes native sidecar (an init container with
restartPolicy Always, Kubernetes >= 1.29). The kubelet starts the containers after it only once
its startupProbe passed, i.e. once the relay's start check (a MeterUsage dry run per dimension)
passed; it keeps running beside the app and is stopped after the app, so it can flush. The probe
is an exec probe, `/entitle health` inside the sidecar (exit 0 once GET /v1/health is 200), so
the relay listens on loopback only; it allows the whole entitle.timeout plus 30 s (the check
retries transient failures that long). Nothing is rendered unless entitle.meter.dimensions is set
and entitle.meter.mode is sidecar.
*/}}
{{- define "entitle.meter.sidecar" -}}
{{- $m := include "entitle.meter.settings" . | fromYaml -}}
{{- if and $m.enabled (eq $m.mode "sidecar") -}}
{{- include "entitle.values" . -}}
{{- $c := .Values.entitle -}}
{{- $budget := include "entitle.durationSeconds" ($c.timeout | default "30m") | int -}}
- name: entitle-meter
  image: {{ include "entitle.image" . | quote }}
  imagePullPolicy: {{ ($c.image | default dict).pullPolicy | default "IfNotPresent" }}
  restartPolicy: Always
  args: ["meter"]
  env:
    {{- include "entitle.baseEnv" . | nindent 4 }}
    {{- include "entitle.meter.relayEnv" . | trim | nindent 4 }}
    {{- with include "entitle.extraEnv" . }}
    {{- . | nindent 4 }}
    {{- end }}
  startupProbe:
    exec:
      command: {{ include "entitle.meter.probeCommand" . }}
    periodSeconds: 1
    timeoutSeconds: 2
    failureThreshold: {{ add $budget 30 }}
  volumeMounts:
    - name: entitle-meter-state
      mountPath: {{ $m.stateDir }}
  securityContext:
    {{- include "entitle.securityContext" . | nindent 4 }}
  terminationMessagePolicy: FallbackToLogsOnError
  resources:
    {{- toYaml $m.resources | nindent 4 }}
{{- end -}}
{{- end -}}

{{/*
Metering: the app container's env. Sidecar mode: ENTITLE_METER_URL (where to POST /v1/usage).
Run mode: the relay's settings for `entitle run` (which sets ENTITLE_METER_URL for the workload)
and, given the pod's terminationGracePeriodSeconds, ENTITLE_GRACE_PERIOD: entitle SIGKILLs a
workload still running after grace - flushTimeout - 5 s, so the flush always fits.
Takes the root context or (dict "root" . "terminationGracePeriodSeconds" N).
*/}}
{{- define "entitle.meter.appEnv" -}}
{{- $root := . -}}
{{- $grace := 0 -}}
{{- if and (kindIs "map" .) (hasKey . "root") -}}
{{- $root = .root -}}
{{- $grace = .terminationGracePeriodSeconds | default 0 | int -}}
{{- end -}}
{{- $m := include "entitle.meter.settings" $root | fromYaml -}}
{{- if $m.enabled -}}
{{- if eq $m.mode "sidecar" -}}
- name: ENTITLE_METER_URL
  value: {{ $m.url | quote }}
{{- else -}}
{{- include "entitle.meter.relayEnv" $root | trim }}
{{- $given := list -}}
{{- range ($root.Values.entitle.extraEnv | default list) }}{{ $given = append $given .name }}{{ end -}}
{{- if and (gt $grace 0) (not (has "ENTITLE_GRACE_PERIOD" $given)) }}
- name: ENTITLE_GRACE_PERIOD
  value: {{ printf "%ds" (sub $grace (add ($m.flushSeconds | int) 5)) | quote }}
{{- end }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Metering, run mode: the journal's emptyDir in the app container (entitle run writes it). */}}
{{- define "entitle.meter.appVolumeMounts" -}}
{{- $m := include "entitle.meter.settings" . | fromYaml -}}
{{- if and $m.enabled (eq $m.mode "run") -}}
- name: entitle-meter-state
  mountPath: {{ $m.stateDir }}
{{- end -}}
{{- end -}}

{{/*
The pod's terminationGracePeriodSeconds, checked: a stopping pod must have time for the app's
own shutdown, then the relay's flush (entitle.meter.flushTimeout), then exiting. Takes
(dict "root" . "seconds" N); fails for a metered product when N <= flushTimeout + 5 s.
*/}}
{{- define "entitle.meter.terminationGracePeriodSeconds" -}}
{{- $seconds := .seconds | default 30 | int -}}
{{- $m := include "entitle.meter.settings" .root | fromYaml -}}
{{- if and $m.enabled (le $seconds (add ($m.flushSeconds | int) 5)) -}}
{{- fail (printf "terminationGracePeriodSeconds %d leaves no room for the metering flush: it must exceed the app's own shutdown time + entitle.meter.flushTimeout (%s) + 5 s" $seconds $m.flushTimeout) -}}
{{- end -}}
{{- $seconds -}}
{{- end -}}
