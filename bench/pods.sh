#!/usr/bin/env bash
# Pod benchmark, side by side in one run: skiff (a `skiff server` with its node agent, driven by
# kubectl) and `podman kube play` (the anchor scripts in ../shared/bench/podman-anchor), on the
# same busybox-httpd image. For skiff: create → HTTP 200 on the pod IP (through kubectl, and as
# one API request with curl: kubectl alone takes ~45 ms here before its request leaves), delete,
# 20 pods applied at once until all answer, delete of all 20, and per-pod overhead (shim RSS/PSS).
# Needs root, busybox-static, kubectl, python3; podman via the anchor's 00_install.sh (PODMAN=0 skips it).
# SECCOMP_AB=1 adds create -> HTTP 200 with the default seccomp filter (RuntimeDefault for every
# pod) against a second server started with --seccomp-default=false, interleaved, same image.
# SERVER_ARGS adds flags to the server (e.g. --disable-controller-manager).
# Usage: [SKIFF=target/release/skiff] [REPS=10] [PODMAN=1] [SECCOMP_AB=0] [SERVER_ARGS=] bench/pods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
REPS=${REPS:-10}
ANCHOR=$(readlink -f ../shared/bench/podman-anchor)
T=$(mktemp -d)
PORT=16999; BRIDGE=skb0; NET=10.160.0
export KUBECONFIG=$T/data/kubeconfig.yaml
now() { date +%s%N; }
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f %d\n", m, a[1], a[NR], NR}'; }
row() { read -r med mn mx n < <(stats < "$2"); printf '| %-55s | %8s | %8s | %8s | %3s | %s |\n' "$1" "$med" "$mn" "$mx" "$n" "${3:-ms}"; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
cleanup() {
  kubectl delete pod --all --grace-period=0 --force >/dev/null 2>&1 || true
  KUBECONFIG=$T/off/kubeconfig.yaml kubectl delete pod --all --grace-period=0 --force >/dev/null 2>&1 || true
  for _ in $(seq 100); do [ -z "$(ls "$T/data/pods" "$T/off/pods" 2>/dev/null)" ] && break; sleep 0.1; done
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null
  [ -n "${SERVER_OFF:-}" ] && kill "$SERVER_OFF" 2>/dev/null; sleep 0.5
  ip link del "$BRIDGE" 2>/dev/null || true; ip link del skb1 2>/dev/null || true; rm -rf "$T"
}
trap cleanup EXIT

# The image: busybox with a page, httpd as the command, exiting on SIGTERM like a real server.
mkdir -p "$T/root/bin" "$T/root/www" && cp "$(command -v busybox)" "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"; ln -s busybox "$T/root/bin/httpd"
echo 'hello from web:1.0' > "$T/root/www/index.html"
tar -C "$T/root" -cf "$T/web.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; httpd -f -p 80 -h /www & wait"]' \
  "$T/web.tar" localhost/web:1.0 >/dev/null
SKIFF_LOG=warn "$SKIFF" --data-dir "$T/data" server --listen 127.0.0.1:$PORT --pod-cidr $NET.0/24 --bridge $BRIDGE \
  --node-name bench --disable-outbound-nat ${SERVER_ARGS:-} 2>"$T/server.log" & SERVER=$!
until kubectl get node bench >/dev/null 2>&1; do sleep 0.1; done
pod() { printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: web\n    image: localhost/web:1.0\n    imagePullPolicy: Never\n' "$1"; }

pod web > "$T/web.yaml"
kubectl apply -f "$T/web.yaml" >/dev/null; kubectl wait --for=condition=Ready pod/web >/dev/null; kubectl delete pod web >/dev/null
: > "$T/http"; : > "$T/del"
for _ in $(seq "$REPS"); do
  # The first free address is handed out first: the pod will be $NET.2.
  python3 "$ANCHOR/waitfor.py" http $NET.2 80 "hello from web" $BRIDGE 30 > "$T/ok" & wp=$!
  sleep 0.15
  t0=$(now); kubectl apply -f "$T/web.yaml" >/dev/null
  wait $wp; echo "$(ms "$t0" "$(cat "$T/ok")")" >> "$T/http"
  t3=$(now); kubectl delete pod web >/dev/null; echo "$(ms "$t3" "$(now)")" >> "$T/del"
done
# The same create as one API request (what skiff itself takes, without kubectl's start-up).
PKI=$T/data/pki; : > "$T/api"
printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"web","image":"localhost/web:1.0","imagePullPolicy":"Never"}]}}' > "$T/web.json"
for _ in $(seq "$REPS"); do
  python3 "$ANCHOR/waitfor.py" http $NET.2 80 "hello from web" $BRIDGE 30 > "$T/ok" & wp=$!
  sleep 0.15
  t0=$(now)
  curl -sf -o /dev/null --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    -H 'Content-Type: application/json' --data-binary @"$T/web.json" \
    "https://127.0.0.1:$PORT/api/v1/namespaces/default/pods"
  wait $wp; echo "$(ms "$t0" "$(cat "$T/ok")")" >> "$T/api"
  kubectl delete pod web >/dev/null
done

N=20; : > "$T/all.yaml"; : > "$T/twenty"; : > "$T/twenty_del"; : > "$T/rss"; : > "$T/pss"
for i in $(seq -w 1 $N); do pod "web-$i" >> "$T/all.yaml"; echo --- >> "$T/all.yaml"; done
for _ in $(seq 3); do
  t0=$(now); kubectl apply -f "$T/all.yaml" >/dev/null
  # As the anchor's 12_twenty_pods.sh checks its pods: curl each address in turn.
  for i in $(seq 2 $((N + 1))); do until curl -s -m 1 "http://$NET.$i/" | grep -q "hello from web"; do sleep 0.01; done; done
  echo "$(ms "$t0" "$(now)")" >> "$T/twenty"
  sleep 1
  shims=$(pgrep -f -- "--dir $T/data/pods")
  rss=0; pss=0
  for p in $shims; do
    rss=$((rss + $(awk '/^VmRSS:/{print $2}' /proc/$p/status))); pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)))
  done
  echo "scale=2; $rss/$N/1024" | bc >> "$T/rss"; echo "scale=2; $pss/$N/1024" | bc >> "$T/pss"
  t3=$(now); kubectl delete pod --all >/dev/null; echo "$(ms "$t3" "$(now)")" >> "$T/twenty_del"
done

# Seccomp A/B: the server above (RuntimeDefault for every pod, the default) against one started
# with --seccomp-default=false (no filter), one create each in turn.
if [ "${SECCOMP_AB:-0}" = 1 ]; then
  "$SKIFF" --data-dir "$T/off" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; httpd -f -p 80 -h /www & wait"]' \
    "$T/web.tar" localhost/web:1.0 >/dev/null
  SKIFF_LOG=warn "$SKIFF" --data-dir "$T/off" server --listen 127.0.0.1:16998 --pod-cidr 10.160.1.0/24 --bridge skb1 \
    --node-name bench-off --disable-outbound-nat --seccomp-default=false 2>"$T/server-off.log" & SERVER_OFF=$!
  until KUBECONFIG=$T/off/kubeconfig.yaml kubectl get node bench-off >/dev/null 2>&1; do sleep 0.1; done
  # create (one API request) -> HTTP 200 on the pod's address; then delete. Args: port data-dir net bridge.
  create_http() {
    python3 "$ANCHOR/waitfor.py" http "$3.2" 80 "hello from web" "$4" 30 > "$T/ok" & local wp=$!
    sleep 0.15
    local t0; t0=$(now)
    curl -sf -o /dev/null --cacert "$2/pki/ca.crt" --cert "$2/pki/admin.crt" --key "$2/pki/admin.key" \
      -H 'Content-Type: application/json' --data-binary @"$T/web.json" \
      "https://127.0.0.1:$1/api/v1/namespaces/default/pods"
    wait $wp; ms "$t0" "$(cat "$T/ok")"
    KUBECONFIG=$2/kubeconfig.yaml kubectl delete pod web >/dev/null
  }
  create_http $PORT "$T/data" $NET $BRIDGE >/dev/null; create_http 16998 "$T/off" 10.160.1 skb1 >/dev/null
  : > "$T/sc_on"; : > "$T/sc_off"
  # Alternating which goes first, so that neither always follows the other's teardown.
  for i in $(seq "$REPS"); do
    if [ $((i % 2)) = 1 ]; then
      create_http $PORT "$T/data" $NET $BRIDGE >> "$T/sc_on"; create_http 16998 "$T/off" 10.160.1 skb1 >> "$T/sc_off"
    else
      create_http 16998 "$T/off" 10.160.1 skb1 >> "$T/sc_off"; create_http $PORT "$T/data" $NET $BRIDGE >> "$T/sc_on"
    fi
  done
fi

echo "| measurement | median | min | max | n | unit |"
echo "|---|---:|---:|---:|---:|---|"
row "skiff: kubectl apply -> HTTP 200 on pod IP" "$T/http"
row "skiff: create (one API request, curl) -> HTTP 200 on pod IP" "$T/api"
row "skiff: kubectl delete pod (returns when gone)" "$T/del"
row "skiff: 20 pods applied at once until all answer HTTP" "$T/twenty"
row "skiff: kubectl delete of all 20 pods" "$T/twenty_del"
row "skiff: per-pod overhead, shim RSS" "$T/rss" MB
row "skiff: per-pod overhead, shim PSS" "$T/pss" MB
if [ "${SECCOMP_AB:-0}" = 1 ]; then
  row "skiff: create (curl) -> HTTP 200, RuntimeDefault filter" "$T/sc_on"
  row "skiff: create (curl) -> HTTP 200, --seccomp-default=false" "$T/sc_off"
  read -r on _ < <(stats < "$T/sc_on"); read -r off _ < <(stats < "$T/sc_off")
  echo "seccomp filter / no filter (medians): $(echo "scale=2; $on/$off" | bc)"
fi

if [ "${PODMAN:-1}" = 1 ]; then
  "$ANCHOR/00_install.sh" >/dev/null
  export REPS RUNTIME=crun
  "$ANCHOR/01_images.sh" >/dev/null
  REPS_C=3 "$ANCHOR/10_kube_play.sh" | grep -E "HTTP 200|kube down|stop -t0" || true
  REPS_C=3 "$ANCHOR/12_twenty_pods.sh" | grep -E "20|RSS|PSS|overhead" || true
fi
