#!/usr/bin/env bash
# Stateful workload benchmark, side by side in one run on one skiff server with its node:
#  1. `kubectl apply` of a PersistentVolumeClaim (default class local-path, WaitForFirstConsumer)
#     plus a pod mounting it, until the pod is Ready, against the same pod with an emptyDir;
#  2. a 3-replica StatefulSet (OrderedReady, a claim template, a headless Service) from apply
#     until all 3 pods are Ready, against a 3-replica Deployment of the same pod, and against the
#     same StatefulSet with podManagementPolicy Parallel.
# Interleaved, REPS times each; everything deleted (claims and volumes too) between reps.
# Needs root, busybox-static, kubectl, bc. Usage: [SKIFF=target/release/skiff] [REPS=5] bench/stateful.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
REPS=${REPS:-5}
T=$(mktemp -d)
PORT=16996; BRIDGE=skb4; NET=10.164
export KUBECONFIG=$T/data/kubeconfig.yaml
now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f %d\n", m, a[1], a[NR], NR}'; }
row() { read -r med mn mx n < <(stats < "$2"); printf '| %-52s | %9s | %9s | %9s | %3s |\n' "$1" "$med" "$mn" "$mx" "$n"; }
median() { stats < "$1" | cut -d' ' -f1; }
cleanup() {
  kubectl delete sts,deploy --all --wait=false >/dev/null 2>&1 || true
  kubectl delete pod --all --grace-period=0 --force >/dev/null 2>&1 || true
  for _ in $(seq 200); do [ -z "$(ls "$T/data/pods" 2>/dev/null)" ] && break; sleep 0.1; done
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; sleep 0.5
  ip link del "$BRIDGE" 2>/dev/null || true; rm -rf "$T"
}
trap cleanup EXIT

# The image: busybox that sleeps until SIGTERM.
mkdir -p "$T/root/bin" && cp "$(command -v busybox)" "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"; ln -s busybox "$T/root/bin/sleep"
tar -C "$T/root" -cf "$T/app.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; sleep 3600 & wait"]' \
  "$T/app.tar" localhost/app:1.0 >/dev/null
SKIFF_LOG=warn "$SKIFF" --data-dir "$T/data" server --listen 127.0.0.1:$PORT --pod-cidr $NET.0.0/16 --bridge $BRIDGE \
  --node-name bench --disable-outbound-nat 2>"$T/server.log" & SERVER=$!
until kubectl get node bench >/dev/null 2>&1; do sleep 0.1; done
until kubectl get serviceaccount default >/dev/null 2>&1; do sleep 0.1; done

POD_SPEC='terminationGracePeriodSeconds: 1
containers:
- name: app
  image: localhost/app:1.0
  imagePullPolicy: Never
  volumeMounts:
  - {name: data, mountPath: /data}'
indent() { sed "s/^/$(printf '%*s' "$1" '')/"; }
pod() { # name volume-source-yaml
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels: {app: %s}\nspec:\n%s\n  volumes:\n  - name: data\n    %s\n' \
    "$1" "$1" "$(echo "$POD_SPEC" | indent 2)" "$2"
}
claim() { printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: %s\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 16Mi\n---\n' "$1"; }
statefulset() { # name policy
  printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  clusterIP: None\n  selector: {app: %s}\n  ports: [{port: 80}]\n---\n' "$1" "$1"
  printf 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: %s\nspec:\n  serviceName: %s\n  replicas: 3\n  podManagementPolicy: %s\n  selector:\n    matchLabels: {app: %s}\n  template:\n    metadata:\n      labels: {app: %s}\n    spec:\n%s\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 16Mi\n' \
    "$1" "$1" "$2" "$1" "$1" "$(echo "$POD_SPEC" | indent 6)"
}
deployment() { # name
  printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: %s}\n  template:\n    metadata:\n      labels: {app: %s}\n    spec:\n%s\n      volumes:\n      - name: data\n        emptyDir: {}\n' \
    "$1" "$1" "$1" "$(echo "$POD_SPEC" | indent 6)"
}
ready() { # selector count: wait until that many pods are Ready
  until [ "$(kubectl get pods -l "$1" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge "$2" ]; do sleep 0.02; done
}
gone() { until [ -z "$(kubectl get pods -l "$1" -o name)" ] && [ -z "$(kubectl get pvc,pv -o name)" ]; do sleep 0.1; done; }
timed() { # file selector count yaml-file
  local t0; t0=$(now); kubectl apply -f "$4" >/dev/null; ready "$2" "$3"; echo "$(ms "$t0" "$(now)")" >> "$1"
}

{ claim data; pod claimed 'persistentVolumeClaim: {claimName: data}'; } > "$T/claimed.yaml"
pod scratch 'emptyDir: {}' > "$T/scratch.yaml"
statefulset db OrderedReady > "$T/sts.yaml"; statefulset pdb Parallel > "$T/parallel.yaml"; deployment web > "$T/deploy.yaml"
: > "$T/claimed"; : > "$T/scratch"; : > "$T/sts"; : > "$T/parallel"; : > "$T/deploy"
for _ in $(seq "$REPS"); do
  timed "$T/claimed" app=claimed 1 "$T/claimed.yaml"; kubectl delete -f "$T/claimed.yaml" >/dev/null; gone app=claimed
  timed "$T/scratch" app=scratch 1 "$T/scratch.yaml"; kubectl delete -f "$T/scratch.yaml" >/dev/null; gone app=scratch
  timed "$T/sts" app=db 3 "$T/sts.yaml"; kubectl delete -f "$T/sts.yaml" >/dev/null; kubectl delete pvc -l app=db >/dev/null; gone app=db
  timed "$T/deploy" app=web 3 "$T/deploy.yaml"; kubectl delete -f "$T/deploy.yaml" >/dev/null; gone app=web
  timed "$T/parallel" app=pdb 3 "$T/parallel.yaml"; kubectl delete -f "$T/parallel.yaml" >/dev/null; kubectl delete pvc -l app=pdb >/dev/null; gone app=pdb
done

echo
echo "skiff stateful workloads, $(nproc) cores, REPS=$REPS"
echo
printf '| %-52s | %9s | %9s | %9s | %3s |\n' "figure (ms, apply -> Ready)" median min max n
echo "|------------------------------------------------------|-----------|-----------|-----------|-----|"
row "claim (local-path) + pod" "$T/claimed"
row "the same pod with an emptyDir" "$T/scratch"
row "StatefulSet, 3 replicas, OrderedReady, claims" "$T/sts"
row "StatefulSet, 3 replicas, Parallel, claims" "$T/parallel"
row "Deployment, 3 replicas, emptyDir" "$T/deploy"
echo
echo "claim + pod / emptyDir pod: $(echo "scale=2; $(median "$T/claimed") / $(median "$T/scratch")" | bc)x"
echo "StatefulSet (OrderedReady) / Deployment: $(echo "scale=2; $(median "$T/sts") / $(median "$T/deploy")" | bc)x"
echo "StatefulSet (Parallel) / Deployment: $(echo "scale=2; $(median "$T/parallel") / $(median "$T/deploy")" | bc)x"
