{{- define "graphgate.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "graphgate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "graphgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "graphgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "graphgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "graphgate.redisUrl" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- printf "redis://%s-redis:6379/0" (include "graphgate.fullname" .) -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end -}}

{{- /*
Seconds a pod drains after SIGTERM (GRACEFUL_TIMEOUT): a turn that began just before it may wait
QUEUE_TIMEOUT for its session, run REQUEST_TIMEOUT, then take up to 5 s to be stored. 0 derives
it from `config`; a value shorter than that is refused (the pods would refuse it too).
*/}}
{{- define "graphgate.gracefulTimeout" -}}
{{- $queue := float64 (default "10" .Values.config.QUEUE_TIMEOUT) -}}
{{- $request := float64 (default "30" .Values.config.REQUEST_TIMEOUT) -}}
{{- $needed := add (ceil (addf $queue $request) | int) 5 -}}
{{- $given := int .Values.gracefulTimeoutSeconds -}}
{{- if eq $given 0 -}}
{{- $needed -}}
{{- else if lt $given $needed -}}
{{- fail (printf "gracefulTimeoutSeconds=%d is shorter than a turn may last: QUEUE_TIMEOUT + REQUEST_TIMEOUT + 5 s = %d s (0 derives it)" $given $needed) -}}
{{- else -}}
{{- $given -}}
{{- end -}}
{{- end -}}

{{- /*
The pod's grace period counts from the start of preStop: it must cover the pause, the drain and
the master's exit. 0 derives it (pause + drain + 10 s); a value that does not cover them is refused.
*/}}
{{- define "graphgate.terminationGracePeriod" -}}
{{- $drain := add (int .Values.preStopSleepSeconds) (include "graphgate.gracefulTimeout" . | int) -}}
{{- $given := int .Values.terminationGracePeriodSeconds -}}
{{- if eq $given 0 -}}
{{- add $drain 10 -}}
{{- else if le $given $drain -}}
{{- fail (printf "terminationGracePeriodSeconds=%d does not cover preStopSleepSeconds + the graceful timeout = %d s (0 derives it)" $given $drain) -}}
{{- else -}}
{{- $given -}}
{{- end -}}
{{- end -}}
