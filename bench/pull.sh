#!/usr/bin/env bash
# Pull benchmark, side by side in one run: `skiff pull` vs `skopeo copy` of the same image (a
# busybox base plus a random 100 MB layer) from a docker-registry on loopback, into empty stores.
# Needs: busybox-static, docker-registry, skopeo, a built skiff (SKIFF=path).
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=${SKIFF:-target/release/skiff}
REPS=${REPS:-5}
T=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$T/reg" "$REG" > "$T/reg.yml"
docker-registry serve "$T/reg.yml" >/dev/null 2>&1 &
REGPID=$!
trap 'kill $REGPID 2>/dev/null; rm -rf "$T"' EXIT
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.05; done

mkdir -p "$T/rootfs/bin" "$T/ctx" && cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
"$SKIFF" --data-dir "$T/src" import "$T/rootfs.tar" base:1 >/dev/null
head -c 104857600 /dev/urandom > "$T/ctx/blob"
printf 'FROM base:1\nCOPY blob /blob\n' > "$T/ctx/Dockerfile"
"$SKIFF" --data-dir "$T/src" build -t "$REG/bench/big:1" "$T/ctx" >/dev/null 2>&1
"$SKIFF" --data-dir "$T/src" push "$REG/bench/big:1" --insecure >/dev/null

for tool in skiff skopeo; do
  : > "$T/$tool.ms"
  for i in $(seq 0 "$REPS"); do
    rm -rf "$T/dst"; mkdir -p "$T/dst"
    printf 'mirrors:\n  "%s":\n    endpoint: ["http://%s"]\n' "$REG" "$REG" > "$T/dst/registries.yaml"
    sync; t0=$(now)
    if [ $tool = skiff ]; then "$SKIFF" --data-dir "$T/dst" pull "$REG/bench/big:1" >/dev/null
    else skopeo copy -q --src-tls-verify=false "docker://$REG/bench/big:1" "oci:$T/dst/layout:big" >/dev/null; fi
    t1=$(now)
    [ "$i" -gt 0 ] && echo $(( (t1 - t0) / 1000000 )) >> "$T/$tool.ms"
  done
done
s=$(median < "$T/skiff.ms"); k=$(median < "$T/skopeo.ms")
printf 'pull busybox + 100 MB layer from a loopback registry (median of %s, ms)\n' "$REPS"
printf '  skiff pull    %6s\n  skopeo copy   %6s\n  ratio skiff/skopeo %s\n' "$s" "$k" "$(echo "scale=2; $s/$k" | bc)"
