#!/usr/bin/env bash
# Build benchmark, side by side in one run: `skiff build` vs `buildah bud` on the same Dockerfile
# (FROM a busybox base, COPY a fresh random 20 MB file, ENTRYPOINT), REPS timed runs each after a
# warm-up; the image is removed between runs (untimed). Needs: busybox-static, buildah, a built
# skiff (SKIFF=path, default target/release/skiff). Prints medians and the ratio skiff/buildah.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=${SKIFF:-target/release/skiff}
REPS=${REPS:-7}
T=$(mktemp -d)
trap 'buildah --root "$T/bstore" --runroot "$T/brun" rmi -a -f >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The same busybox base for both tools.
mkdir -p "$T/rootfs/bin" && cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
"$SKIFF" --data-dir "$T/skiff" import "$T/rootfs.tar" localhost/busybox:latest >/dev/null
"$SKIFF" --data-dir "$T/skiff" save localhost/busybox:latest -o "$T/base.tar"
buildah --root "$T/bstore" --runroot "$T/brun" pull -q "oci-archive:$T/base.tar" >/dev/null
buildah --root "$T/bstore" --runroot "$T/brun" tag "$(buildah --root "$T/bstore" --runroot "$T/brun" images -q | head -1)" localhost/busybox:latest

mkdir -p "$T/ctx"
cat > "$T/ctx/Dockerfile" <<'EOD'
FROM localhost/busybox:latest
COPY app.txt /app.txt
ENTRYPOINT ["/bin/busybox","cat","/app.txt"]
EOD

for tool in skiff buildah; do
  : > "$T/$tool.ms"
  for i in $(seq 0 "$REPS"); do
    head -c 20971520 /dev/urandom > "$T/ctx/app.txt"; sync
    t0=$(now)
    if [ $tool = skiff ]; then
      "$SKIFF" --data-dir "$T/skiff" build -t localhost/app:1 "$T/ctx" >/dev/null 2>&1
    else
      buildah --root "$T/bstore" --runroot "$T/brun" bud -q -t localhost/app:1 "$T/ctx" >/dev/null 2>&1
    fi
    t1=$(now)
    [ "$i" -gt 0 ] && echo $(( (t1 - t0) / 1000000 )) >> "$T/$tool.ms"
    if [ $tool = skiff ]; then
      "$SKIFF" --data-dir "$T/skiff" rmi localhost/app:1 >/dev/null && "$SKIFF" --data-dir "$T/skiff" image prune >/dev/null
    else
      buildah --root "$T/bstore" --runroot "$T/brun" rmi -f localhost/app:1 >/dev/null 2>&1 || true
    fi
  done
done
s=$(median < "$T/skiff.ms"); b=$(median < "$T/buildah.ms")
printf 'build FROM busybox + COPY 20MB + ENTRYPOINT (median of %s, ms)\n' "$REPS"
printf '  skiff build   %6s\n  buildah bud   %6s\n  ratio skiff/buildah %s\n' "$s" "$b" "$(echo "scale=2; $s/$b" | bc)"
