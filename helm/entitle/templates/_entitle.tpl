{{/*
entitle library chart. Every template takes the parent chart's root context (`.`) and reads its
`.Values.entitle` block:

  entitle:
    image: {repository: <registry>/entitle, tag: "0.1.0", digest: "", pullPolicy: IfNotPresent}
    productCode: prod-abc123          # required
    publicKeyVersion: 1
    publicKey: |                      # PEM from the AWS Marketplace Management Portal, rendered
      -----BEGIN PUBLIC KEY-----      #   into a ConfigMap by "entitle.configMap"; or name an
      ...                             #   existing ConfigMap with existingConfigMap (key: publicKeyKey)
    existingConfigMap: ""
    publicKeyKey: product-key.pem
    region: ""                        # AWS_REGION; empty: the EKS IRSA webhook sets it
    disableIMDS: true                 # AWS_EC2_METADATA_DISABLED=true (IRSA does not need IMDS)
    timeout: 30m                      # ENTITLE_TIMEOUT
    logFormat: json                   # ENTITLE_LOG_FORMAT
    recordDir: /var/run/entitle       # init mode: where the app finds record.json (read-only)
    binDir: /entitle                  # wrapper mode: where the app finds the entitle binary
    extraEnv: []                      # more env for entitle (e.g. AWS_ENDPOINT_URL_MARKETPLACE_METERING)
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
*/}}

{{- define "entitle.values" -}}
{{- $c := .Values.entitle | default dict -}}
{{- $_ := required "entitle.productCode is required (the product code from the AWS Marketplace Management Portal)" $c.productCode -}}
{{- if not (or $c.publicKey $c.existingConfigMap) -}}
{{- fail "entitle.publicKey (PEM) or entitle.existingConfigMap is required" -}}
{{- end -}}
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

{{/* The ConfigMap holding the product's public key (nothing when existingConfigMap is set). */}}
{{- define "entitle.configMap" -}}
{{- include "entitle.values" . -}}
{{- $c := .Values.entitle -}}
{{- if not $c.existingConfigMap }}
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

{{/* env for entitle (the init container, or the app container in wrapper mode). */}}
{{- define "entitle.env" -}}
{{- include "entitle.values" . -}}
{{- $c := .Values.entitle -}}
- name: ENTITLE_PRODUCT_CODE
  value: {{ $c.productCode | quote }}
- name: ENTITLE_PUBLIC_KEY_VERSION
  value: {{ $c.publicKeyVersion | default 1 | quote }}
- name: ENTITLE_PUBLIC_KEY_FILE
  value: /etc/entitle/key/{{ $c.publicKeyKey | default "product-key.pem" }}
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
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "entitle.keyVolumeMount" -}}
- name: entitle-key
  mountPath: /etc/entitle/key
  readOnly: true
{{- end -}}

{{/* Init-container mode: `entitle check` writes record.json into the shared emptyDir. */}}
{{- define "entitle.initContainer" -}}
{{- $c := .Values.entitle -}}
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
Pod volumes. Takes the root context (init mode), or (dict "root" . "wrapper" true).
*/}}
{{- define "entitle.volumes" -}}
{{- $root := . -}}
{{- $wrapper := false -}}
{{- if and (kindIs "map" .) (hasKey . "root") -}}
{{- $root = .root -}}
{{- $wrapper = .wrapper -}}
{{- end -}}
- name: entitle-key
  configMap:
    name: {{ include "entitle.configMapName" $root }}
    items:
      - key: {{ $root.Values.entitle.publicKeyKey | default "product-key.pem" }}
        path: {{ $root.Values.entitle.publicKeyKey | default "product-key.pem" }}
{{- if $wrapper }}
- name: entitle-bin
  emptyDir:
    sizeLimit: 16Mi
{{- else }}
- name: entitle-record
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
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
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 32Mi}
{{- end -}}

{{/* Wrapper mode: the app container's command, as a JSON list: entitle run -- COMMAND... */}}
{{- define "entitle.wrapper.command" -}}
{{- $dir := .root.Values.entitle.binDir | default "/entitle" -}}
{{- $cmd := required "the app's command is required in wrapper mode (entitle run -- COMMAND)" .command -}}
{{- concat (list (printf "%s/entitle" $dir) "run" "--") $cmd | toJson -}}
{{- end -}}

{{- define "entitle.wrapper.volumeMounts" -}}
{{- include "entitle.keyVolumeMount" . }}
- name: entitle-bin
  mountPath: {{ .Values.entitle.binDir | default "/entitle" }}
  readOnly: true
{{- end -}}
