#!/usr/bin/env bash
# Streaming benchmark, side by side in one run: port-forward throughput through `kubectl
# port-forward` (1.32: SPDY tunnelled in a WebSocket; 1.29: plain SPDY) against a direct TCP
# download from the pod IP, and `kubectl exec POD -- true` latency against `podman exec CTR true` (the anchor's
# 15_exec.sh, PODMAN=0 skips it). Needs root, busybox-static, kubectl, curl.
# Usage: [SKIFF=target/release/skiff] [REPS=10] [PODMAN=1] bench/streaming.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
REPS=${REPS:-10}
ANCHOR=$(readlink -f ../shared/bench/podman-anchor)
KUBECTL="$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32"
KUBECTL_SPDY="$(dirname "$KUBECTL")/kubectl.1.29"
T=$(mktemp -d)
PORT=16998; BRIDGE=skb9; NET=10.161.0; LOCAL=18777; LOCAL_SPDY=18778; MB=256
export KUBECONFIG=$T/data/kubeconfig.yaml
now() { date +%s%N; }
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f %d\n", m, a[1], a[NR], NR}'; }
row() { read -r med mn mx n < <(stats < "$2"); printf '| %-55s | %8s | %8s | %8s | %3s | %s |\n' "$1" "$med" "$mn" "$mx" "$n" "${3:-ms}"; }
cleanup() {
  [ -n "${PF:-}" ] && kill "$PF" "$PF_SPDY" 2>/dev/null
  "$KUBECTL" delete pod --all --grace-period=0 --force >/dev/null 2>&1 || true
  for _ in $(seq 100); do [ -z "$(ls "$T/data/pods" 2>/dev/null)" ] && break; sleep 0.1; done
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; sleep 0.5
  ip link del "$BRIDGE" 2>/dev/null || true; rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/root/bin" "$T/root/www" && cp "$(command -v busybox)" "$T/root/bin/busybox"
for a in sh httpd true; do ln -s busybox "$T/root/bin/$a"; done
head -c $((MB * 1024 * 1024)) /dev/urandom > "$T/root/www/big.bin"
tar -C "$T/root" -cf "$T/web.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; httpd -f -p 80 -h /www & wait"]' \
  "$T/web.tar" localhost/web:1.0 >/dev/null
SKIFF_LOG=warn "$SKIFF" --data-dir "$T/data" server --listen 127.0.0.1:$PORT --pod-cidr $NET.0/24 --bridge $BRIDGE \
  --node-name bench --disable-outbound-nat 2>"$T/server.log" & SERVER=$!
until "$KUBECTL" get node bench >/dev/null 2>&1; do sleep 0.1; done
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: localhost/web:1.0\n    imagePullPolicy: Never\n' \
  | "$KUBECTL" apply -f - >/dev/null
"$KUBECTL" wait --for=condition=Ready pod/web >/dev/null
IP=$("$KUBECTL" get pod web -o jsonpath='{.status.podIP}')
"$KUBECTL" port-forward pod/web $LOCAL:80 >/dev/null 2>&1 & PF=$!
"$KUBECTL_SPDY" port-forward pod/web $LOCAL_SPDY:80 >/dev/null 2>&1 & PF_SPDY=$!
until curl -s -o /dev/null "http://127.0.0.1:$LOCAL/"; do sleep 0.1; done
until curl -s -o /dev/null "http://127.0.0.1:$LOCAL_SPDY/"; do sleep 0.1; done

: > "$T/direct"; : > "$T/pf"; : > "$T/pf_spdy"; : > "$T/exec"
# CPU milliseconds a process has used (user + system), and the whole machine's busy milliseconds.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
busy_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2 + $3 + $4 + $7 + $8) * 1000 / hz}' /proc/stat; }
# MB/s of one download; with a kubectl's pid, also where the CPU went (ms per transfer) into $2.*
mbps() { curl -s -o /dev/null -w '%{speed_download}\n' "$1" | awk '{print $1/1048576}'; }
measure() {
  local s0 k0 b0; s0=$(cpu_ms "$SERVER"); k0=$(cpu_ms "$3"); b0=$(busy_ms)
  mbps "$1" >> "$2"
  echo "$(cpu_ms "$SERVER") - $s0" | bc >> "$2.server"; echo "$(cpu_ms "$3") - $k0" | bc >> "$2.kubectl"
  echo "$(busy_ms) - $b0" | bc >> "$2.busy"
}
for _ in $(seq "${PF_REPS:-5}"); do
  # MB/s, side by side and interleaved: the same file from the pod IP and through each port-forward.
  mbps "http://$IP/big.bin" >> "$T/direct"
  measure "http://127.0.0.1:$LOCAL/big.bin" "$T/pf" "$PF"
  measure "http://127.0.0.1:$LOCAL_SPDY/big.bin" "$T/pf_spdy" "$PF_SPDY"
done
for _ in $(seq "$REPS"); do
  t0=$(now); "$KUBECTL" exec web -- true; echo "scale=1; ($(now)-$t0)/1000000" | bc >> "$T/exec"
done

echo "| measurement | median | min | max | n | unit |"
echo "|---|---:|---:|---:|---:|---|"
row "direct download from the pod IP ($MB MB)" "$T/direct" MB/s
row "through kubectl 1.32 port-forward, WebSocket ($MB MB)" "$T/pf" MB/s
row "through kubectl 1.29 port-forward, SPDY ($MB MB)" "$T/pf_spdy" MB/s
ratio() { awk -v a="$(stats < "$1" | cut -d' ' -f1)" -v b="$(stats < "$T/direct" | cut -d' ' -f1)" 'BEGIN{printf "%.2f", a/b}'; }
echo "port-forward / direct (medians): WebSocket $(ratio "$T/pf"), SPDY $(ratio "$T/pf_spdy")"
for v in pf pf_spdy; do
  row "  CPU of skiff per $v transfer" "$T/$v.server"
  row "  CPU of kubectl per $v transfer" "$T/$v.kubectl"
  row "  CPU of the whole machine (2 cores) per $v transfer" "$T/$v.busy"
done
row "skiff: kubectl exec POD -- true" "$T/exec"
if [ "${PODMAN:-1}" = 1 ]; then
  "$ANCHOR/00_install.sh" >/dev/null
  "$ANCHOR/01_images.sh" >/dev/null
  RUNS=$REPS "$ANCHOR/15_exec.sh" | grep -E "podman exec" || true
fi
