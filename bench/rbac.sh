#!/usr/bin/env bash
# Authorization cost, side by side in one run: two `skiff server --disable-agent` on temporary
# data dirs, one with `--authorization-mode AlwaysAllow` (authenticated, never authorized), one
# with the default authorizers (Node,RBAC), each holding the same BINDINGS bindings (half
# RoleBindings in namespace `bench`, half ClusterRoleBindings, each to a user of its own) plus
# one RoleBinding, created last, that lets the ServiceAccount bench/reader `view` there.
# wrk then GETs one ConfigMap in `bench` as that ServiceAccount (its bearer token) from both
# servers, interleaved, REPS times each: requests/s and p99. The admin token (system:masters,
# decided before RBAC) on the RBAC server is a third column. Goal: RBAC at most 5% slower than
# AlwaysAllow. Prints a markdown table and the ratios; never pass/fail.
# Needs kubectl, wrk (installed with apt-get when missing). Traffic goes to 127.0.0.1 only.
# SECOND_MODE=AlwaysAllow runs the second server unauthorized too: an A/A run whose ratio is
# the noise floor of two servers side by side.
# Usage: [SKIFF=target/release/skiff] [BINDINGS=1000] [REPS=5] [DURATION=10] [CONNS=16]
#        [SECOND_MODE=Node,RBAC] bench/rbac.sh   (about 2 + REPS*3*DURATION/60 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
BINDINGS=${BINDINGS:-1000}; REPS=${REPS:-5}; DURATION=${DURATION:-10}; CONNS=${CONNS:-16}
SECOND_MODE=${SECOND_MODE:-Node,RBAC}
[ -x "$SKIFF" ] || { echo "error: no skiff binary at $SKIFF (set SKIFF=...)" >&2; exit 1; }
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

# start NAME PORT ARGS...: a server on 127.0.0.1:PORT with its data under $T/NAME.
start() {
  local name=$1 port=$2; shift 2
  SKIFF_LOG=warn "$SKIFF" --data-dir "$T/$name" server --disable-agent --listen "127.0.0.1:$port" "$@" \
    > "$T/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do
    [ -s "$T/$name/kubeconfig.yaml" ] && KUBECONFIG=$T/$name/kubeconfig.yaml kubectl get --raw /readyz >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "error: server $name did not start; its log:" >&2; tail -20 "$T/$name.log" >&2; exit 1
}

# The bindings, as one List for `kubectl create -f`.
bindings_yaml() {
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  local half=$((BINDINGS / 2))
  for i in $(seq 1 "$half"); do
    cat <<EOF
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: rb-$i, namespace: bench}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: user-$i}]
EOF
  done
  for i in $(seq $((half + 1)) "$BINDINGS"); do
    cat <<EOF
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: crb-$i}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: user-$i}]
EOF
  done
}
bindings_yaml > "$T/bindings.yaml"

# prepare NAME: the namespace, the ConfigMap, the bindings and the reader's token.
prepare() {
  local k=(kubectl --kubeconfig "$T/$1/kubeconfig.yaml")
  "${k[@]}" create namespace bench >/dev/null
  "${k[@]}" -n bench create configmap cm --from-literal=key=value >/dev/null
  "${k[@]}" create -f "$T/bindings.yaml" >/dev/null
  "${k[@]}" -n bench create serviceaccount reader >/dev/null
  "${k[@]}" -n bench create rolebinding reader-view --clusterrole=view --serviceaccount=bench:reader >/dev/null
  "${k[@]}" -n bench create token reader --duration=2h > "$T/$1.token"
  cp "$T/$1/pki/token" "$T/$1.admin"
  [ "$("${k[@]}" get rolebindings -n bench --no-headers | wc -l)" -gt $((BINDINGS / 2)) ] \
    || { echo "error: the bindings were not all created on $1" >&2; exit 1; }
}

log "servers: AlwaysAllow on :17601, $SECOND_MODE on :17602 ($BINDINGS bindings each)"
start allow 17601 --authorization-mode AlwaysAllow
start rbac 17602 --authorization-mode "$SECOND_MODE"
prepare allow
prepare rbac
# The token must be refused where it grants nothing and allowed where it does: checks the setup.
code() { curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$2"; }
[ "$(code "$(cat "$T/rbac.token")" https://127.0.0.1:17602/api/v1/namespaces/bench/configmaps/cm)" = 200 ] \
  || { echo "error: the reader cannot read the ConfigMap on the RBAC server" >&2; exit 1; }
[ "$SECOND_MODE" = AlwaysAllow ] \
  || [ "$(code "$(cat "$T/rbac.token")" https://127.0.0.1:17602/api/v1/namespaces/bench/secrets)" = 403 ] \
  || { echo "error: the reader may list Secrets on the RBAC server: RBAC is not deciding" >&2; exit 1; }

# Let both servers finish what the setup started (caches rebuilt, compaction): until neither
# used more than 2 CPU ticks in 2 s, or a minute.
settle() {
  local ticks; ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
  for _ in $(seq 30); do
    local busy=0 p a b
    for p in "${PIDS[@]}"; do
      a=$(ticks "$p"); sleep 2; b=$(ticks "$p")
      [ $((b - a)) -gt 2 ] && busy=1
    done
    [ "$busy" = 0 ] && return
  done
}
log "settling"
settle

# run NAME PORT TOKENFILE: one wrk run; appends "rps p99_ms" to $T/NAME.out.
run() {
  local out
  out=$(wrk --latency -t2 -c"$CONNS" -d"${DURATION}s" -H "Authorization: Bearer $(cat "$3")" \
    "https://127.0.0.1:$2/api/v1/namespaces/bench/configmaps/cm")
  local rps p99
  rps=$(awk '/Requests\/sec/{print $2}' <<< "$out")
  p99=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else {sub(/s$/,"",v); v*=1000}; print v}' <<< "$out")
  grep -q 'Non-2xx' <<< "$out" && { echo "error: $1 answered non-2xx: $out" >&2; exit 1; }
  echo "$rps $p99" >> "$T/$1.out"
}
for i in $(seq "$REPS"); do
  log "rep $i/$REPS"
  # Alternate the order so that neither always runs first.
  if [ $((i % 2)) = 1 ]; then
    run allow 17601 "$T/allow.token"; run rbac 17602 "$T/rbac.token"
  else
    run rbac 17602 "$T/rbac.token"; run allow 17601 "$T/allow.token"
  fi
  run admin 17602 "$T/rbac.admin"
done
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
col() { cut -d' ' -f"$2" "$T/$1.out" | median; }
a_rps=$(col allow 1); a_p99=$(col allow 2); r_rps=$(col rbac 1); r_p99=$(col rbac 2)
m_rps=$(col admin 1); m_p99=$(col admin 2)
echo
echo "| GET one ConfigMap, $BINDINGS bindings, $CONNS connections | requests/s (median of $REPS) | p99 ms |"
echo "|---|---|---|"
echo "| AlwaysAllow, ServiceAccount token | $a_rps | $a_p99 |"
echo "| $SECOND_MODE, ServiceAccount token (RoleBinding created last) | $r_rps | $r_p99 |"
echo "| $SECOND_MODE, admin token (system:masters) | $m_rps | $m_p99 |"
echo
awk -v a="$a_rps" -v r="$r_rps" -v ap="$a_p99" -v rp="$r_p99" 'BEGIN{
  printf "second / AlwaysAllow requests/s: %.3f (goal >= 0.95 with RBAC); p99 ratio %.2f\n", r/a, rp/ap }'
