{{/* The release's full name: the release name alone when it already names
the chart, so `helm install iam-operator` gives objects named iam-operator. */}}
{{- define "iam-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels never change after install (a Deployment's selector is
immutable), so they hold no version. */}}
{{- define "iam-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* helm.sh/chart and managed-by are the only labels the kustomize base
(config/base) lacks; tests/chart.rs drops those two when it compares. */}}
{{- define "iam-operator.labels" -}}
{{ include "iam-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "iam-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "iam-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "iam-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{/* Exactly one watched namespace is the only case where the operator's
API calls are all namespaced (src/main.rs), so the only case where Roles
suffice. */}}
{{- define "iam-operator.namespaced" -}}
{{- if eq (len .Values.watchNamespaces) 1 -}}true{{- end -}}
{{- end -}}

{{- /* The rules on the operator's objects, ServiceAccounts and Events.
Bound cluster-wide, or in the one watched namespace. */}}
{{- define "iam-operator.workRules" -}}
# The operator's own kinds: watched, and patched for finalizers.
- apiGroups: [iam-operator.io]
  resources: [iamserviceaccounts, podidentitybindings]
  verbs: [get, list, watch, patch, update]
# Status is a subresource with its own permission: Ready, Reconciling,
# Stalled and what was done in AWS.
- apiGroups: [iam-operator.io]
  resources: [iamserviceaccounts/status, podidentitybindings/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion on created ServiceAccounts need
# update on the owner's finalizers subresource.
- apiGroups: [iam-operator.io]
  resources: [iamserviceaccounts/finalizers, podidentitybindings/finalizers]
  verbs: [update]
# ServiceAccounts: watched, created when a spec asks, annotated for IRSA,
# deleted when the operator created them and the object goes.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
# Pods of a bound ServiceAccount, listed (by field, never watched) to name
# those started before the binding, which hold no credentials for it.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Events explain refusals (GuardrailViolation, InvalidPolicy...) on the object.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.restartStalePods }}
# restartStalePods: a stale pod's ReplicaSet is read to find its Deployment,
# and the workload's pod template is patched, as kubectl rollout restart does.
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, patch]
{{- end }}
{{- end }}
