#!/usr/bin/env bash
# Custom resources against ConfigMaps, same server, same run: creates/s of Widgets (a CRD with a
# default, bounds, an enum, a pattern and a CEL rule) and of ConfigMaps of equal size, CLIENTS
# keep-alive clients, ROUNDS interleaved rounds of DURATION seconds each (bench/crd_load.py). The goal is a
# median ratio of at least 0.7. `skiff server --disable-agent` on a temporary data dir.
# Usage: [SKIFF=target/release/skiff] [PORT=16997] [CLIENTS=8] [DURATION=4] [ROUNDS=5] bench/crd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
PORT=${PORT:-16997}; CLIENTS=${CLIENTS:-8}; SECONDS_EACH=${DURATION:-4}; ROUNDS=${ROUNDS:-5}
[ -x "$SKIFF" ] || { echo "error: no skiff binary at $SKIFF (set SKIFF=...)" >&2; exit 1; }
T=$(mktemp -d); SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
SKIFF_LOG=${SKIFF_LOG:-warn} "$SKIFF" --data-dir "$T" server --disable-agent --listen "127.0.0.1:$PORT" \
  > "$T/server.log" 2>&1 & SERVER=$!
for _ in $(seq 600); do [ -s "$T/kubeconfig.yaml" ] && break; sleep 0.1; done
python3 bench/apiserver_load.py --data "$T" --pid "$SERVER" wait-ready --timeout 60
python3 bench/crd_load.py --data "$T" --pid "$SERVER" --clients "$CLIENTS" --seconds "$SECONDS_EACH" --rounds "$ROUNDS"
