#!/usr/bin/env bash
# API server load-and-fault suite, every figure from one run against one `skiff server
# --disable-agent` on a temporary data dir (redb store), driven by bench/apiserver_load.py
# (Python stdlib: HTTPS to 127.0.0.1 with the bearer token, server certificate not verified) and
# kubectl. In order:
#   1. RSS idle; create PODS pods (~1 KiB of labels/annotations each) from CREATE_THREADS threads;
#      RSS after; stored bytes = the sum of the JSON bodies the server returned.
#   2. LISTS concurrent full lists (GET /api/v1/pods, no limit): wall time, peak RSS (sampled every
#      20 ms), RSS 5 s and 30 s after.
#   3. UPDATES merge patches (a label) of one pod carrying BIG_BYTES: peak RSS, RSS +5 s, +30 s.
#      Kubernetes caps a pod's annotations at 256 KiB in total and skiff validates as upstream,
#      so the payload is a container env value rather than an annotation. The pod is deleted after.
#   4. SLOW_CONNS TLS connections that send `GET /api HTTP/1.1\r\nHost: x\r\n` and nothing more:
#      server fds before / while held, a GET /api/v1/namespaces while held, how many the server
#      closed within 40 s. The server runs with --request-header-timeout-seconds HEADER_TIMEOUT
#      (default 5; kube-apiserver and skiff default to 32) for the whole run to keep this short.
#   5. `kubectl get pods -A` over the PODS pods: paginated (kubectl's default, limit=500) vs
#      --chunk-size=0, KUBECTL_REPS runs each, interleaved; medians and their ratio. kubectl
#      throttles itself (client-go: QPS 5, burst 10), so the same comparison is also made as
#      Table reads from bench/apiserver_load.py, which has no rate limit.
#   6. Creates/s with RATE_CLIENTS concurrent clients (a thread each, its own keep-alive connection,
#      unique names in a fresh namespace) for RATE_SECONDS each; server and client CPU alongside
#      (the client is Python on the same 2 cores: a saturated client caps the figure).
#   7. Informer resume: list pods, keep its resourceVersion, kill -9 the server, start it again on
#      the same data dir, create 5 pods, watch from that resourceVersion (timeoutSeconds=2):
#      ADDED events and whether an ERROR 410 came.
# Prints a markdown table, then which goals were met, computed from the figures.
# About 2.5 minutes with the defaults on 2 cores (of which ~70 s are the fixed 30 s settles and the
# slow-client window).
# Needs kubectl, python3, awk, bc. Traffic goes to 127.0.0.1 only.
# Usage: [SKIFF=target/release/skiff] [PORT=17443] [PODS=10000] [CREATE_THREADS=16] [LISTS=16]
#        [UPDATES=500] [BIG_BYTES=1048576] [SLOW_CONNS=1000] [HEADER_TIMEOUT=5]
#        [KUBECTL_REPS=3] [KUBECTL_ARGS=] (e.g. "-o name", used for both modes)
#        [RATE_CLIENTS="1 8 32"] [RATE_SECONDS=5] [KEEP=0] (1 keeps the temp dir) bench/apiserver.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
LOAD=$(readlink -f bench/apiserver_load.py)
PORT=${PORT:-17443}
PODS=${PODS:-10000}; CREATE_THREADS=${CREATE_THREADS:-16}; LISTS=${LISTS:-16}
UPDATES=${UPDATES:-500}; BIG_BYTES=${BIG_BYTES:-1048576}
SLOW_CONNS=${SLOW_CONNS:-1000}; HEADER_TIMEOUT=${HEADER_TIMEOUT:-5}; IDLE_TIMEOUT=${IDLE_TIMEOUT:-10}
STALLED_COUNT=${STALLED_COUNT:-2000}; MANY_LISTS=${MANY_LISTS:-64}; IDLE_CONNS=${IDLE_CONNS:-2000}
KUBECTL_REPS=${KUBECTL_REPS:-3}; KUBECTL_ARGS=${KUBECTL_ARGS:-}
RATE_CLIENTS=${RATE_CLIENTS:-1 8 32}; RATE_SECONDS=${RATE_SECONDS:-5}
[ -x "$SKIFF" ] || { echo "error: no skiff binary at $SKIFF (set SKIFF=...)" >&2; exit 1; }
T=$(mktemp -d); DATA=$T/data; R=$T/results; : > "$R"
export KUBECONFIG=$DATA/kubeconfig.yaml
SERVER=
START=$(date +%s)
now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
median() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f\n", m, a[1], a[NR]}'; }
val() { awk -v k="$1" '$1==k{v=$2} END{if (v=="") exit 1; print v}' "$R" || { echo "error: no figure '$1'" >&2; exit 1; }; }
calc() { awk "BEGIN{printf \"%.${2:-1}f\", $1}"; }
holds() { awk "BEGIN{exit !($1)}"; }
alive() { [ -n "$SERVER" ] && [ -r "/proc/$SERVER/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$SERVER/status"; }
log() { echo "== $*" >&2; }
fail() {
  echo "error: $1" >&2
  if ! alive; then
    echo "error: the server (pid ${SERVER:-?}) is not running" >&2
  fi
  echo "---- last 40 lines of the server log ($T/server.log) ----" >&2
  tail -n 40 "$T/server.log" >&2 || true
  exit 1
}
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
# One load phase; a failure (or a server that died) ends the run with the server's log.
load() { python3 "$LOAD" --data "$DATA" --pid "$SERVER" --out "$R" "$@" || fail "load phase '$1' failed (exit $?)"; }
check_alive() { alive || fail "the server died during: $1"; }
start_server() {
  echo "---- server start $(date -Is) ----" >> "$T/server.log"
  SKIFF_LOG=${SKIFF_LOG:-warn} "$SKIFF" --data-dir "$DATA" server --disable-agent --listen "127.0.0.1:$PORT" \
    --request-header-timeout-seconds "$HEADER_TIMEOUT" --idle-timeout-seconds "$IDLE_TIMEOUT" >> "$T/server.log" 2>&1 & SERVER=$!
  for _ in $(seq 600); do [ -s "$DATA/kubeconfig.yaml" ] && break; check_alive "start-up"; sleep 0.1; done
  load wait-ready --timeout 60
}

log "server: $SKIFF on 127.0.0.1:$PORT, data $DATA"
start_server
sleep 2
load rss --key rss_idle

log "1. create $PODS pods from $CREATE_THREADS threads"
load create --count "$PODS" --threads "$CREATE_THREADS" --namespace load

log "2. $LISTS concurrent full lists (then 30 s of settling)"
load lists --lists "$LISTS" --expect "$PODS"

log "3. $UPDATES merge patches of a pod carrying $BIG_BYTES bytes (then 30 s of settling)"
load updates --updates "$UPDATES" --big-bytes "$BIG_BYTES" --namespace big

log "4. $SLOW_CONNS slow TLS clients (header timeout ${HEADER_TIMEOUT}s, window 40 s)"
load slow --conns "$SLOW_CONNS" --header-timeout "$HEADER_TIMEOUT" --window 40

log "5. kubectl get pods -A ${KUBECTL_ARGS:+$KUBECTL_ARGS }over $PODS pods: paginated vs --chunk-size=0, $KUBECTL_REPS each"
# Untimed first: that kubectl pages (limit=500) by default and not with --chunk-size=0, and that
# both see every pod.
# shellcheck disable=SC2086
kubectl get pods -A $KUBECTL_ARGS -v=6 2> "$T/kv_paged" > "$T/ko_paged" || fail "kubectl get pods -A"
# shellcheck disable=SC2086
kubectl get pods -A $KUBECTL_ARGS --chunk-size=0 -v=6 2> "$T/kv_full" > "$T/ko_full" || fail "kubectl get pods -A --chunk-size=0"
pages=$(grep -E 'GET https://[^ ]*/api/v1/pods\?([^ ]*&)?limit=500' "$T/kv_paged" | grep -c ' 200 OK' || true)
full_limited=$(grep '/api/v1/pods' "$T/kv_full" | grep -c 'limit=' || true)
lines_paged=$(grep -c 'p-[0-9]' "$T/ko_paged" || true); lines_full=$(grep -c 'p-[0-9]' "$T/ko_full" || true)
[ "$lines_paged" = "$PODS" ] && [ "$lines_full" = "$PODS" ] \
  || fail "kubectl listed $lines_paged (paginated) and $lines_full (--chunk-size=0) of the $PODS pods"
echo "kubectl_pages $pages" >> "$R"; echo "kubectl_full_limited $full_limited" >> "$R"
: > "$T/k_paged"; : > "$T/k_full"
for i in $(seq "$KUBECTL_REPS"); do
  for mode in paged full; do
    # Alternate which goes first, so that neither always runs second.
    [ $((i % 2)) = 0 ] && mode=$([ "$mode" = paged ] && echo full || echo paged)
    extra=; [ "$mode" = full ] && extra=--chunk-size=0
    t0=$(now)
    # shellcheck disable=SC2086
    kubectl get pods -A $KUBECTL_ARGS $extra > /dev/null || fail "kubectl get pods -A $extra"
    ms "$t0" "$(now)" >> "$T/k_$mode"
  done
done
check_alive "kubectl get pods"
read -r kp kp_min kp_max < <(median < "$T/k_paged"); read -r kf kf_min kf_max < <(median < "$T/k_full")
{ echo "kubectl_paged_ms $kp"; echo "kubectl_full_ms $kf"; } >> "$R"
# kubectl throttles itself (client-go's QPS 5, burst 10: "Waited for ... due to client-side
# throttling" at -v=6), which caps any server's paginated figure; the same comparison from a
# client without that limit shows the server's part.
throttled=$(grep -c 'client-side throttling' "$T/kv_paged" || true)
echo "kubectl_throttled $throttled" >> "$R"
# The total of those waits ("Waited for 188.9ms due to ...", or "1.2s"): time no server can save.
waited=$(grep -o 'Waited for [0-9.]*m\?s due to client-side' "$T/kv_paged" \
  | awk '{v=$3; if (v ~ /ms$/) {sub(/ms$/, "", v); t+=v} else {sub(/s$/, "", v); t+=v*1000}} END{printf "%.1f", t}')
echo "kubectl_waited_ms $waited" >> "$R"
load pages --limit 500 --reps "$KUBECTL_REPS"

log "6. creates/s with $RATE_CLIENTS clients, ${RATE_SECONDS}s each"
load rates --clients "$(echo "$RATE_CLIENTS" | tr ' ' ',')" --seconds "$RATE_SECONDS"

if [ "${BAD_INPUT:-1}" = 1 ]; then
  log "8. bad input: a stalled watch under $STALLED_COUNT writes of 64 KiB, $MANY_LISTS concurrent lists, $IDLE_CONNS idle connections"
  load stalled-watch --count "$STALLED_COUNT" --kib 64
  load many-lists --lists "$MANY_LISTS"
  load idle --conns "$IDLE_CONNS" --idle-timeout "$IDLE_TIMEOUT"
fi

log "7. informer resume across kill -9"
load resume-rv --namespace resume > /dev/null
RV=$(val resume_rv)
kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true
t0=$(now); start_server; echo "restart_ms $(ms "$t0" "$(now)")" >> "$R"
load resume-watch --rv "$RV" --pods 5 --namespace resume
check_alive "the resume watch"
ELAPSED=$(( $(date +%s) - START ))

# ---- the table ----
idle=$(val rss_idle); stored=$(val stored_mib)
row() { printf '| %-84s | %12s | %-6s |\n' "$1" "$2" "${3:-}"; }
echo
echo "skiff API server, $PODS pods, $(nproc) cores, store redb, --request-header-timeout-seconds $HEADER_TIMEOUT; run took ${ELAPSED}s"
echo "CPU: % of one core over the phase's wall time; 'other' is every other process on the machine (load that skews the figures)."
echo
echo "| measurement | value | unit |"
echo "|---|---:|---|"
row "1. server RSS, idle after start" "$(calc "$idle")" MiB
row "1. create $PODS pods, $CREATE_THREADS threads: wall time" "$(calc "$(val create_seconds)")" s
row "1. create $PODS pods: rate" "$(calc "$(val create_rate)" 0)" pods/s
row "1. stored bytes (sum of returned pod JSON; request body $(val create_request_bytes) B)" "$(calc "$stored")" MiB
row "1. server RSS after creating $PODS pods" "$(calc "$(val rss_after_create)")" MiB
row "2. $LISTS concurrent full lists ($(val list_items) pods, $(calc "$(val list_mib)") MiB each; server CPU $(calc "$(val lists_server_cpu)" 0)%, client $(calc "$(val lists_client_cpu)" 0)%, other $(calc "$(val lists_other_cpu)" 0)%): wall time" "$(calc "$(val lists_seconds)" 2)" s
row "2. server RSS peak during the lists ($(val lists_samples) samples)" "$(calc "$(val lists_peak_rss)")" MiB
row "2. server RSS 5 s after the lists" "$(calc "$(val lists_rss_5s)")" MiB
row "2. server RSS 30 s after the lists" "$(calc "$(val lists_rss_30s)")" MiB
row "3. $UPDATES merge patches of a $(calc "$(val big_pod_mib)" 2) MiB pod: wall time" "$(calc "$(val updates_seconds)" 2)" s
row "3. server RSS before the patches" "$(calc "$(val updates_rss_before)")" MiB
row "3. server RSS peak during the patches" "$(calc "$(val updates_peak_rss)")" MiB
row "3. server RSS 5 s after the patches" "$(calc "$(val updates_rss_5s)")" MiB
row "3. server RSS 30 s after the patches" "$(calc "$(val updates_rss_30s)")" MiB
row "4. $SLOW_CONNS slow TLS clients: time to open them all ($(val slow_open_failed) failed to open)" "$(calc "$(val slow_open_seconds)" 2)" s
row "4. server open fds before" "$(val slow_fds_before)" fds
row "4. server open fds while held" "$(val slow_fds_held)" fds
row "4. GET /api/v1/namespaces while held: latency ($( [ "$(val slow_get_ok)" = 1 ] && echo 200 OK || echo FAILED))" "$(calc "$(val slow_get_ms)")" ms
row "4. slow connections closed by the server within 40 s" "$(val slow_closed)" conns
row "4. ... of which within the header timeout (${HEADER_TIMEOUT}s + 1 s)" "$(val slow_closed_within_timeout)" conns
row "4. time from half-sent header to close: median" "$(calc "$(val slow_close_median_s)" 2)" s
row "4. time from half-sent header to close: max" "$(calc "$(val slow_close_max_s)" 2)" s
row "4. server open fds after the window" "$(val slow_fds_after)" fds
row "5. kubectl get pods -A ${KUBECTL_ARGS:+$KUBECTL_ARGS }paginated ($pages pages; median, min $kp_min, max $kp_max)" "$kp" ms
row "5. kubectl get pods -A ${KUBECTL_ARGS:+$KUBECTL_ARGS }--chunk-size=0 ($( [ "$full_limited" = 0 ] && echo "one request, no limit" || echo "$full_limited requests with limit=!"); median, min $kf_min, max $kf_max)" "$kf" ms
row "5. paginated / unpaginated (kubectl throttled itself before $(val kubectl_throttled) of its requests)" "$(calc "$kp/$kf" 2)" x
row "5. ... kubectl's own waits in one paginated run (client-go's QPS 5, burst 10; no server can save them)" "$(val kubectl_waited_ms)" ms
row "5. paginated less those waits / unpaginated" "$(calc "($kp-$(val kubectl_waited_ms))/$kf" 2)" x
pp=$(val pages_paged_ms); pf=$(val pages_full_ms)
row "5. the same as Table pages of 500 from a client without a rate limit: paginated" "$(calc "$pp")" ms
row "5. ... unpaginated" "$(calc "$pf")" ms
row "5. ... paginated / unpaginated" "$(calc "$pp/$pf" 2)" x
for k in $RATE_CLIENTS; do
  row "6. creates/s, $k client(s) ($(val "rate_${k}_count") pods; server CPU $(calc "$(val "rate_${k}_server_cpu")" 0)%, client $(calc "$(val "rate_${k}_client_cpu")" 0)%, other $(calc "$(val "rate_${k}_other_cpu")" 0)%)" "$(calc "$(val "rate_$k")" 0)" pods/s
done
rlast=$(echo "$RATE_CLIENTS" | awk '{print $NF}'); rfirst=$(echo "$RATE_CLIENTS" | awk '{print $1}')
rate_ratio=$(calc "$(val "rate_$rlast")/$(val "rate_$rfirst")" 2)
row "6. creates/s $rlast clients / $rfirst client(s)" "$rate_ratio" x
if [ "${BAD_INPUT:-1}" = 1 ]; then
  row "8. a watch never read while $(val stalled_written) pods of 64 KiB ($(calc "$(val stalled_written_mib)") MiB) were written: RSS before / peak" "$(calc "$(val stalled_rss_before)") / $(calc "$(val stalled_peak_rss)")" MiB
  row "8. ... then read: ADDED events / 410 / RSS after" "$(val stalled_added) / $(val stalled_410) / $(calc "$(val stalled_rss_after)") MiB" ""
  row "8. $MANY_LISTS concurrent full lists of $(calc "$(val many_lists_mib)") MiB each: 200 / 429 (seats: 400 read-only, 10 per list) / peak RSS" "$(val many_lists_200) / $(val many_lists_429) / $(calc "$(val many_lists_peak_rss)") MiB" ""
  row "8. $(val idle_conns) idle TLS connections (idle timeout ${IDLE_TIMEOUT}s): fds before / held; closed, within" "$(val idle_fds_before) / $(val idle_fds_held); $(val idle_closed), $(calc "$(val idle_close_seconds)") s" ""
fi
row "7. restart after kill -9 until the API answers" "$(val restart_ms)" ms
row "7. watch from the pre-restart resourceVersion: ADDED for the 5 new pods" "$(val resume_added)" events
row "7. ... all events / ERROR 410 / other ERROR" "$(val resume_events) / $(val resume_410) / $(val resume_other_errors)" ""

# ---- goals ----
goal() { if holds "$2"; then printf '  [MET]     %s (%s)\n' "$1" "$3"; else printf '  [NOT MET] %s (%s)\n' "$1" "$3"; fi; }
lp=$(val lists_peak_rss); l30=$(val lists_rss_30s)
echo
echo "Goals:"
goal "peak RSS during $LISTS lists < 4 x stored + 50 MiB" "$lp < 4*$stored + 50" \
  "peak $(calc "$lp") MiB vs $(calc "4*$stored + 50") MiB"
goal "RSS 30 s after the lists < 1.5 x stored + idle" "$l30 < 1.5*$stored + $idle" \
  "$(calc "$l30") MiB vs $(calc "1.5*$stored + $idle") MiB"
goal "all $SLOW_CONNS slow connections closed within the header timeout while the server answered" \
  "$(val slow_closed_within_timeout) == $SLOW_CONNS && $(val slow_get_ok) == 1" \
  "$(val slow_closed_within_timeout)/$SLOW_CONNS within ${HEADER_TIMEOUT}s+1s, $(val slow_closed) within 40 s; GET while held: $( [ "$(val slow_get_ok)" = 1 ] && echo "200 in $(calc "$(val slow_get_ms)") ms" || echo failed)"
goal "kubectl get paginated within 1.2 x unpaginated" "$kp <= 1.2*$kf" \
  "$kp ms vs $kf ms: $(calc "$kp/$kf" 2)x; kubectl throttled $(val kubectl_throttled) of its requests itself, waiting $(val kubectl_waited_ms) ms: without those waits $(calc "($kp-$(val kubectl_waited_ms))/$kf" 2)x"
goal "paginated Table reads within 1.2 x unpaginated, client without a rate limit" "$pp <= 1.2*$pf" \
  "$(calc "$pp") ms vs $(calc "$pf") ms: $(calc "$pp/$pf" 2)x"
goal "creates/s at $rlast clients >= 3 x $rfirst client" "$(val "rate_$rlast") >= 3*$(val "rate_$rfirst")" \
  "$(calc "$(val "rate_$rlast")" 0) vs $(calc "$(val "rate_$rfirst")" 0) pods/s: ${rate_ratio}x"
goal "informer resumed after kill -9 with no relist" \
  "$(val resume_added) == 5 && $(val resume_410) == 0 && $(val resume_other_errors) == 0" \
  "$(val resume_added) ADDED, $( [ "$(val resume_410)" = 0 ] && echo no || echo an) ERROR 410"
# Other processes' CPU during the timed phases: the figures of a busy machine are not comparable.
noisy=
for p in lists $(for k in $RATE_CLIENTS; do echo "rate_$k"; done); do
  o=$(val "${p}_other_cpu"); holds "$o > 25" && noisy="$noisy $p ($(calc "$o" 0)% of a core)"
done
if [ -n "$noisy" ]; then
  echo "WARNING: other processes were busy during:$noisy; rerun on a quiet machine before comparing."
fi
