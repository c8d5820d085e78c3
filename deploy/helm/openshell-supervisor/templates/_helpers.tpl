{{/*
Named templates of the openshell-supervisor chart. A parent chart includes
them in its driver container with this chart's context, for example
  env:
    {{- include "openshell-supervisor.driverEnv" (index .Subcharts "openshell-supervisor") | nindent 12 }}
(.Subcharts carries the subchart's own values, Chart and Capabilities).

The sideload method is decided by the driver, not here: with
sideloadMethod "" the config says auto, and the driver chooses from the
Kubernetes version passed here and the nodes it is given at run time. The
templates "openshell-supervisor.methodFromVersion" and
"openshell-supervisor.methodIfNodesMount" only predict the driver's choice
for NOTES.txt and the ConfigMap's annotations; tests/tests/helm checks the
prediction against the real driver for every version in its table, and the
driver's `explain` is the authority.
*/}}

{{/* The ConfigMap's name: configMap.name, else RELEASE-openshell-supervisor. */}}
{{- define "openshell-supervisor.fullname" -}}
{{- if .Values.configMap.name -}}
{{- .Values.configMap.name -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The Kubernetes version passed to the driver: kubeVersion, else helm's. */}}
{{- define "openshell-supervisor.kubeVersion" -}}
{{- .Values.kubeVersion | default .Capabilities.KubeVersion.Version -}}
{{- end -}}

{{/* Where that version came from, for NOTES.txt. */}}
{{- define "openshell-supervisor.kubeVersionSource" -}}
{{- if .Values.kubeVersion -}}
the kubeVersion value
{{- else -}}
.Capabilities.KubeVersion: the cluster's on install or upgrade; when rendered offline, helm template --kube-version, or helm's built-in default if that was not given
{{- end -}}
{{- end -}}

{{/*
The minor version, as the driver reads it (driver/src/kubernetes_version.rs):
a leading v, the major 1, the minor; the patch and any -/+ suffix (-rc.1,
-eks-..., -gke...., +k3s1) do not matter.
*/}}
{{- define "openshell-supervisor.minor" -}}
{{- $version := include "openshell-supervisor.kubeVersion" . -}}
{{- if not (regexMatch "^v?1\\.[0-9]+(\\.[0-9]+)?([-+][0-9A-Za-z.+-]+)?$" $version) -}}
{{- fail (printf "Kubernetes version %q (from %s) is not 1.MINOR[.PATCH] with an optional leading v and -/+ suffix" $version (include "openshell-supervisor.kubeVersionSource" .)) -}}
{{- end -}}
{{- regexReplaceAll "^v?1\\.([0-9]+).*$" $version "${1}" -}}
{{- end -}}

{{/*
What the version does with image volumes, with the driver's thresholds
(contract IMAGE_VOLUME_*_SINCE_MINOR, driver/src/plan.rs): none before 1.31,
alpha 1.31-1.32, gated-beta 1.33-1.34, on-by-default from 1.35.
*/}}
{{- define "openshell-supervisor.versionLevel" -}}
{{- $minor := include "openshell-supervisor.minor" . | atoi -}}
{{- if ge $minor 35 -}}on-by-default
{{- else if ge $minor 33 -}}gated-beta
{{- else if ge $minor 31 -}}alpha
{{- else -}}none
{{- end -}}
{{- end -}}

{{/* "true" when the version lets auto count on image volumes. */}}
{{- define "openshell-supervisor.versionUsable" -}}
{{- $level := include "openshell-supervisor.versionLevel" . -}}
{{- if or (eq $level "on-by-default") (and (eq $level "gated-beta") .Values.supervisor.imageVolumeFeatureGate) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* The method written into the driver's config: auto, or the one asked for. */}}
{{- define "openshell-supervisor.method" -}}
{{- $method := .Values.supervisor.sideloadMethod | default "auto" -}}
{{- if and (eq $method "image-volume") (eq (include "openshell-supervisor.versionLevel" .) "none") -}}
{{- fail (printf "supervisor.sideloadMethod image-volume: Kubernetes %s (from %s) has no image volumes (alpha from 1.31, on by default from 1.35); use init-container, or \"\" for auto. The driver refuses it too." (include "openshell-supervisor.kubeVersion" .) (include "openshell-supervisor.kubeVersionSource" .)) -}}
{{- end -}}
{{- $method -}}
{{- end -}}

{{/*
The driver's choice from the version alone (no nodes given): auto chooses
init-container, since no container runtime is then known to mount image
volumes; an explicit method is kept.
*/}}
{{- define "openshell-supervisor.methodFromVersion" -}}
{{- $method := include "openshell-supervisor.method" . -}}
{{- if eq $method "auto" -}}init-container{{- else -}}{{ $method }}{{- end -}}
{{- end -}}

{{/*
The driver's choice when every node's runtime mounts image volumes (and no
kubelet is older than the version allows): auto chooses image-volume when the
version allows it.
*/}}
{{- define "openshell-supervisor.methodIfNodesMount" -}}
{{- $method := include "openshell-supervisor.method" . -}}
{{- if ne $method "auto" -}}{{ $method }}
{{- else if eq (include "openshell-supervisor.versionUsable" .) "true" -}}image-volume
{{- else -}}init-container
{{- end -}}
{{- end -}}

{{/* "true" when the driver warns that image-volume needs the feature gate. */}}
{{- define "openshell-supervisor.gateWarning" -}}
{{- if and (eq (include "openshell-supervisor.method" .) "image-volume") (ne (include "openshell-supervisor.versionUsable" .) "true") -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* The supervisor image reference: REPO@sha256:... (digest only), else REPO:TAG. */}}
{{- define "openshell-supervisor.image" -}}
{{- $image := .Values.supervisor.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository ($image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
The pull policy the pods get: the one set, else Kubernetes' rule as the
driver writes it out (IfNotPresent for a digest, Always for latest,
IfNotPresent for another tag).
*/}}
{{- define "openshell-supervisor.pullPolicy" -}}
{{- $image := .Values.supervisor.image -}}
{{- if $image.pullPolicy -}}{{ $image.pullPolicy }}
{{- else if $image.digest -}}IfNotPresent
{{- else if eq ($image.tag | default .Chart.AppVersion) "latest" -}}Always
{{- else -}}IfNotPresent
{{- end -}}
{{- end -}}

{{/*
The driver's settings, as its config file holds them: keys named like the
driver's flags (`openshell-driver-kubernetes config --help`). Unset
optional settings are left out, so the driver's defaults apply. The version
helm sees is passed unless the driver reads the live one
(kubernetesVersionJson): the driver refuses two versions that disagree, and
a version rendered at install would disagree after every cluster upgrade.
*/}}
{{- define "openshell-supervisor.config" -}}
{{- $s := .Values.supervisor -}}
supervisor-sideload-method: {{ include "openshell-supervisor.method" . | quote }}
supervisor-image: {{ include "openshell-supervisor.image" . | quote }}
{{- with $s.image.pullPolicy }}
supervisor-image-pull-policy: {{ . | quote }}
{{- end }}
{{- if not $s.kubernetesVersionJson }}
kubernetes-version: {{ include "openshell-supervisor.kubeVersion" . | quote }}
{{- end }}
image-volume-feature-gate: {{ $s.imageVolumeFeatureGate }}
pin-supervisor-digest: {{ $s.pinDigest }}
security-profile: {{ $s.securityProfile | quote }}
image-pull-secrets: {{ $s.imagePullSecrets | toJson }}
{{- with $s.nodesJson }}
nodes-json: {{ . | quote }}
{{- end }}
{{- with $s.kubernetesVersionJson }}
kubernetes-version-json: {{ . | quote }}
{{- end }}
{{- with $s.publicKeyFile }}
supervisor-public-key: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The same settings as the driver container's environment variables
(contract/src/sideload.rs names them).
*/}}
{{- define "openshell-supervisor.driverEnv" -}}
{{- $s := .Values.supervisor -}}
- name: OPENSHELL_SUPERVISOR_SIDELOAD_METHOD
  value: {{ include "openshell-supervisor.method" . | quote }}
- name: OPENSHELL_SUPERVISOR_IMAGE
  value: {{ include "openshell-supervisor.image" . | quote }}
{{- with $s.image.pullPolicy }}
- name: OPENSHELL_SUPERVISOR_IMAGE_PULL_POLICY
  value: {{ . | quote }}
{{- end }}
{{- if not $s.kubernetesVersionJson }}
- name: OPENSHELL_KUBERNETES_VERSION
  value: {{ include "openshell-supervisor.kubeVersion" . | quote }}
{{- end }}
- name: OPENSHELL_IMAGE_VOLUME_FEATURE_GATE
  value: {{ $s.imageVolumeFeatureGate | toString | quote }}
- name: OPENSHELL_PIN_SUPERVISOR_DIGEST
  value: {{ $s.pinDigest | toString | quote }}
- name: OPENSHELL_SECURITY_PROFILE
  value: {{ $s.securityProfile | quote }}
{{- with $s.imagePullSecrets }}
- name: OPENSHELL_IMAGE_PULL_SECRETS
  value: {{ join "," . | quote }}
{{- end }}
{{- with $s.nodesJson }}
- name: OPENSHELL_NODES_JSON
  value: {{ . | quote }}
{{- end }}
{{- with $s.kubernetesVersionJson }}
- name: OPENSHELL_KUBERNETES_VERSION_JSON
  value: {{ . | quote }}
{{- end }}
{{- with $s.publicKeyFile }}
- name: OPENSHELL_SUPERVISOR_PUBLIC_KEY
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Where the driver container mounts the config file. */}}
{{- define "openshell-supervisor.configDir" -}}/etc/openshell/driver{{- end -}}

{{/* The other way in: the config file from the ConfigMap. A volume... */}}
{{- define "openshell-supervisor.configVolume" -}}
- name: openshell-supervisor-config
  configMap:
    name: {{ include "openshell-supervisor.fullname" . }}
{{- end -}}

{{/* ...its mount in the driver container... */}}
{{- define "openshell-supervisor.configVolumeMount" -}}
- name: openshell-supervisor-config
  mountPath: {{ include "openshell-supervisor.configDir" . }}
  readOnly: true
{{- end -}}

{{/* ...and the variable that names the file to the driver. */}}
{{- define "openshell-supervisor.configEnv" -}}
- name: OPENSHELL_DRIVER_CONFIG
  value: {{ printf "%s/config.yaml" (include "openshell-supervisor.configDir" .) | quote }}
{{- end -}}
