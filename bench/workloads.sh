#!/usr/bin/env bash
# Workload benchmark, side by side in one run on one skiff server with its node: the controller
# overhead as a ratio, and what the controllers cost when idle.
#  1. a 10-replica Deployment from `kubectl apply` until all its pods are Ready, against the same
#     10 pods applied directly until Ready (interleaved, REPS times each);
#  2. a rolling update of that Deployment to a new image until `rollout status` returns;
#  3. DEPLOYMENTS Deployments x 3 replicas: the server's CPU and memory idle before they exist and
#     idle after they all run (goal: ~0% CPU, memory growth under 30 MB).
# Needs root, busybox-static, kubectl, bc. Usage: [SKIFF=target/release/skiff] [REPS=5]
# [DEPLOYMENTS=100] bench/workloads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
REPS=${REPS:-5}
DEPLOYMENTS=${DEPLOYMENTS:-100}
T=$(mktemp -d)
PORT=16998; BRIDGE=skb2; NET=10.162
export KUBECONFIG=$T/data/kubeconfig.yaml
now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f %d\n", m, a[1], a[NR], NR}'; }
row() { read -r med mn mx n < <(stats < "$2"); printf '| %-52s | %9s | %9s | %9s | %3s |\n' "$1" "$med" "$mn" "$mx" "$n"; }
cleanup() {
  kubectl delete deploy --all --wait=false >/dev/null 2>&1 || true
  kubectl delete pod --all --grace-period=0 --force >/dev/null 2>&1 || true
  for _ in $(seq 200); do [ -z "$(ls "$T/data/pods" 2>/dev/null)" ] && break; sleep 0.1; done
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; sleep 0.5
  ip link del "$BRIDGE" 2>/dev/null || true; rm -rf "$T"
}
trap cleanup EXIT

# The image: busybox httpd that exits on SIGTERM, as web:1.0 and (same content) web:1.1.
mkdir -p "$T/root/bin" "$T/root/www" && cp "$(command -v busybox)" "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"; ln -s busybox "$T/root/bin/httpd"
echo 'hello' > "$T/root/www/index.html"
tar -C "$T/root" -cf "$T/web.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; httpd -f -p 80 -h /www & wait"]' \
  "$T/web.tar" localhost/web:1.0 >/dev/null
"$SKIFF" --data-dir "$T/data" tag localhost/web:1.0 localhost/web:1.1 >/dev/null
SKIFF_LOG=warn "$SKIFF" --data-dir "$T/data" server --listen 127.0.0.1:$PORT --pod-cidr $NET.0.0/16 --bridge $BRIDGE \
  --node-name bench --max-pods $((DEPLOYMENTS * 3 + 20)) --node-cidr-mask-size 22 --disable-outbound-nat 2>"$T/server.log" & SERVER=$!
until kubectl get node bench >/dev/null 2>&1; do sleep 0.1; done

deployment() { # name replicas image
  printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\nspec:\n  replicas: %s\n  selector:\n    matchLabels:\n      app: %s\n  template:\n    metadata:\n      labels:\n        app: %s\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: web\n        image: %s\n        imagePullPolicy: Never\n' "$1" "$2" "$1" "$1" "$3"
}
pods() { # 10 pods labelled app=direct
  for i in $(seq 10); do
    printf -- '---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: direct-%s\n  labels:\n    app: direct\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: localhost/web:1.0\n    imagePullPolicy: Never\n' "$i"
  done
}
ready() { # selector count: wait until that many pods are Ready
  until [ "$(kubectl get pods -l "$1" -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge "$2" ]; do sleep 0.05; done
}
gone() { until [ -z "$(kubectl get pods -l "$1" -o name)" ]; do sleep 0.1; done; }

deployment web 10 localhost/web:1.0 > "$T/web.yaml"; pods > "$T/direct.yaml"
: > "$T/deploy"; : > "$T/direct"; : > "$T/rollout"
for _ in $(seq "$REPS"); do
  t0=$(now); kubectl apply -f "$T/web.yaml" >/dev/null; ready app=web 10; echo "$(ms "$t0" "$(now)")" >> "$T/deploy"
  t0=$(now); kubectl set image deploy/web web=localhost/web:1.1 >/dev/null
  kubectl rollout status deploy/web --timeout=300s >/dev/null; echo "$(ms "$t0" "$(now)")" >> "$T/rollout"
  kubectl delete deploy web >/dev/null; gone app=web
  t0=$(now); kubectl apply -f "$T/direct.yaml" >/dev/null; ready app=direct 10; echo "$(ms "$t0" "$(now)")" >> "$T/direct"
  kubectl delete pod -l app=direct --wait=false >/dev/null; gone app=direct
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }
idle() { # seconds: CPU % of one core over that time
  local a; a=$(cpu_ticks); sleep "$1"; echo "scale=2; ($(cpu_ticks) - $a) * 100 / ($(getconf CLK_TCK) * $1)" | bc
}
sleep 5
cpu_before=$(idle 30); rss_before=$(rss_kib)
t0=$(now)
for i in $(seq "$DEPLOYMENTS"); do deployment "d$i" 3 localhost/web:1.0; echo '---'; done > "$T/many.yaml"
kubectl apply -f "$T/many.yaml" >/dev/null
until [ "$(kubectl get deploy -o jsonpath='{range .items[*]}{.status.availableReplicas}{"\n"}{end}' | grep -c '^3$')" -ge "$DEPLOYMENTS" ]; do sleep 0.5; done
many_ms=$(ms "$t0" "$(now)")
sleep 10
cpu_after=$(idle 30); rss_after=$(rss_kib)

echo
echo "skiff workloads, $(nproc) cores, REPS=$REPS"
echo
printf '| %-52s | %9s | %9s | %9s | %3s |\n' "figure (ms)" median min max n
echo "|------------------------------------------------------|-----------|-----------|-----------|-----|"
row "Deployment, 10 replicas: apply -> all Ready" "$T/deploy"
row "10 pods applied directly -> all Ready" "$T/direct"
row "rolling update of the 10 to a new image" "$T/rollout"
d=$(stats < "$T/deploy" | cut -d' ' -f1); p=$(stats < "$T/direct" | cut -d' ' -f1)
echo
echo "controller overhead (median Deployment / median direct): $(echo "scale=2; $d / $p" | bc)x"
echo "$DEPLOYMENTS Deployments x 3 replicas until all available: $many_ms ms"
echo "server idle CPU: ${cpu_before}% before, ${cpu_after}% after (30 s each, % of one core)"
echo "server RSS: $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after ($(( (rss_after - rss_before) / 1024 )) MiB growth)"
