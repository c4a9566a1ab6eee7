#!/usr/bin/env bash
# Service networking benchmark, side by side in one run on one skiff server with its node (each
# figure beside its anchor measured in the same run, ratios printed, never pass/fail). Backends:
# `kweb`, 3 nginx pods (Debian's nginx binary, extracted from its package, not installed) that
# keep connections open, and `web`, 3 busybox httpd pods, which close every connection.
#  1. HTTP through kweb's ClusterIP against straight to one pod IP and to all three pod IPs (wrk
#     with keep-alive, interleaved, REPS times each): requests/s and p99. The ClusterIP spreads
#     the 30 connections at random, the three-pod run puts 10 on each pod: see 1d.
#  1b. The same with web (busybox): every request a new connection, so it weighs connection
#     setup (conntrack and the NAT rules' first-packet lookup) against a fork per request.
#  1d. The goal's like-for-like: thread i through Service i (one per pod, kweb-0..2) against
#     thread i straight to pod i: the same connections to the same pods, only the path
#     differs (random balancing over 30 connections, in 1, loads the pods unevenly).
#  1c. 1 from inside a pod (wrk in a client pod's network namespace): what pods see. From the
#     host, DNAT on output re-routes every packet of a connection; a pod's packets are routed
#     (to the cluster IP) or bridged (to a pod IP) as on any node.
#  2. Connection setup through a NodePort (on the bridge address) against straight to a pod: wrk
#     with `Connection: close` to web, so requests/s is new connections/s.
#  6. The built-in ingress (Host: bench.test on 127.0.0.1) in front of kweb against straight to
#     kweb's pods (keep-alive on both sides): requests/s and p99.
#  3. An endpoint turning ready -> its Service carrying traffic: from the ready EndpointSlice
#     being seen on a watch to the first connection to the cluster IP that succeeds (a connect
#     every 2 ms). Goal: under 100 ms.
#  5b. 5 from inside a pod, both servers through the pod's gateway (dnsmasq also listens on the
#     bridge address): what a pod's resolver sees.
#  5. Cluster DNS against dnsmasq serving the same names from a hosts file: dnsperf queries/s
#     flat out, and p50/p99 latency from a rate-limited run (dnsperf 2.10 prints no percentiles:
#     they come from its per-query output).
#  4. SERVICES Services x ENDPOINTS endpoints: from `kubectl apply` of them until the table
#     `ip skiff-svc-<bridge>` holds every service chain and endpoint chain, and one endpoint
#     going away (scale ENDPOINTS -> ENDPOINTS-1) until the table shows it; each split at the
#     moment a watch sees the last EndpointSlice complete (the API's and controller's share
#     before it, the proxy's after). Anchor: `nft -f` of the same table as text (how kube-proxy's
#     nftables mode loads its rules, one transaction).
# busybox httpd answers HTTP/1.1 but closes every connection (`Connection: close`), so every
# request in 1b and 2 is a new TCP connection to the pod.
# All load goes to loopback, pod IPs, this server's cluster IPs and the bridge's own address.
# The machine's cores are shared by wrk/dnsperf, the pods and skiff: figures are for that.
# Needs root, busybox-static, kubectl, python3, nft; installs wrk, dnsperf, bc and dnsmasq-base
# with apt-get when missing, and downloads (apt-get download) the nginx package for kweb. Usage: [SKIFF=target/release/skiff] [REPS=5] [DURATION=10]
# [DNS_RATE=5000] [SERVICES=1000] [ENDPOINTS=10] [RULES_TIMEOUT=300] [SERVER_ARGS=] bench/services.sh
# (about 11 minutes with the defaults on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=$(readlink -f "${SKIFF:-target/release/skiff}")
REPS=${REPS:-5}
DURATION=${DURATION:-10}   # seconds of each wrk and each flat-out dnsperf run
DNS_RATE=${DNS_RATE:-5000} # queries/s of the latency runs: below what either server can take
SERVICES=${SERVICES:-1000}
ENDPOINTS=${ENDPOINTS:-10}
RULES_TIMEOUT=${RULES_TIMEOUT:-300} # seconds the many Services may take to reach the table
SERVER_ARGS=${SERVER_ARGS:-}       # more `skiff server` flags (e.g. --disable-socket-lb: the rules alone)
T=$(mktemp -d)
PORT=16997; BRIDGE=skb3; NET=10.163; GATEWAY=$NET.0.1
HTTP_PORT=18080; HTTPS_PORT=18443
# A /16 of cluster IPs: 1,000 Services do not fit the /24 the other benches use.
SERVICE_CIDR=10.44.0.0/16; DNS_IP=10.44.0.10
SVC_TABLE=skiff-svc-$BRIDGE; NP_TABLE=skiff-np-$BRIDGE; ANCHOR_TABLE=skiff-bench-anchor-$BRIDGE
# wrk sets one address per thread: 3 threads give each of the 3 pods one in the three-pod run;
# every HTTP run uses the same threads and connections so that they compare.
WRK=(wrk --latency -t3 -c30 "-d${DURATION}s")
export KUBECONFIG=$T/data/kubeconfig.yaml

for tool in wrk dnsperf bc dnsmasq; do
  command -v "$tool" >/dev/null && continue
  pkg=$tool; [ "$tool" = dnsmasq ] && pkg=dnsmasq-base
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
done

now() { date +%s%N; }
ms() { echo "scale=1; ($2-$1)/1000000" | bc; }
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f %d\n", m, a[1], a[NR], NR}'; }
median() { stats < "$1" | cut -d' ' -f1; }
row() { [ -s "$2" ] || return 0; read -r med mn mx n < <(stats < "$2"); printf '| %-58s | %9s | %9s | %9s | %3s | %-6s |\n' "$1" "$med" "$mn" "$mx" "$n" "$3"; }
ratio() { echo "scale=2; $1 / $2" | bc; }
# wait SECONDS COMMAND...: until the command succeeds; fails the run after that long.
wait_for() {
  local end=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.05
  done
}

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ] && [ -f "$T/server.log" ]; then echo "failed ($rc); the server's log ends:" >&2; tail -20 "$T/server.log" >&2; fi
  [ -n "${DNSMASQ:-}" ] && kill "$DNSMASQ" 2>/dev/null
  [ -n "${SLICES:-}" ] && kill "$SLICES" 2>/dev/null
  kubectl delete deploy --all --wait=false >/dev/null 2>&1
  kubectl delete pod --all --grace-period=0 --force >/dev/null 2>&1
  for _ in $(seq 300); do [ -z "$(ls "$T/data/pods" 2>/dev/null)" ] && break; sleep 0.1; done
  if [ -n "${SERVER:-}" ]; then
    kill "$SERVER" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  fi
  # The server leaves its rules behind (pods outlive it); this bench's go with its bridge.
  ip link del "$BRIDGE" 2>/dev/null
  for table in "$SVC_TABLE" "$NP_TABLE" "$ANCHOR_TABLE"; do nft delete table ip "$table" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# kweb: Debian's nginx and the libraries it links, answering "hello" on 8080 with keep-alive.
mkdir -p "$T/ngx/root/etc" "$T/ngx/root/tmp" "$T/ngx/root/usr/sbin"
(cd "$T/ngx" && apt-get download -qq nginx 2>/dev/null && dpkg-deb -x nginx_*.deb deb)
cp "$T/ngx/deb/usr/sbin/nginx" "$T/ngx/root/usr/sbin/"
for lib in $(ldd "$T/ngx/deb/usr/sbin/nginx" | grep -o '/lib[^ ]*'); do
  mkdir -p "$T/ngx/root$(dirname "$lib")"; cp -L "$lib" "$T/ngx/root$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$T/ngx/root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$T/ngx/root/etc/group"
cat > "$T/ngx/root/etc/nginx.conf" <<'EOF'
worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path /tmp/body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  server {
    listen 8080;
    location / { return 200 "hello\n"; }
  }
}
EOF
tar -C "$T/ngx/root" -cf "$T/kweb.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["/usr/sbin/nginx","-c","/etc/nginx.conf","-e","stderr"]' \
  "$T/kweb.tar" localhost/kweb:1.0 >/dev/null

# web: busybox httpd on 8080 that exits on SIGTERM, with the applets the probes and the
# readiness test use, and a /tmp for the readiness file.
mkdir -p "$T/root/bin" "$T/root/www" "$T/root/tmp" && cp "$(command -v busybox)" "$T/root/bin/busybox"
for applet in sh httpd nslookup nc wget cat touch rm sleep; do ln -s busybox "$T/root/bin/$applet"; done
echo 'hello' > "$T/root/www/index.html"
tar -C "$T/root" -cf "$T/web.tar" .
"$SKIFF" --data-dir "$T/data" import -c 'CMD ["sh","-c","trap \"exit 0\" TERM; httpd -f -p 8080 -h /www & wait"]' \
  "$T/web.tar" localhost/web:1.0 >/dev/null
SKIFF_LOG=warn "$SKIFF" --data-dir "$T/data" server --listen 127.0.0.1:$PORT --pod-cidr $NET.0.0/16 --bridge $BRIDGE \
  --node-name bench --cluster-dns $DNS_IP --service-cidr $SERVICE_CIDR --ingress-bind-address 127.0.0.1 \
  --ingress-http-port $HTTP_PORT --ingress-https-port $HTTPS_PORT --disable-outbound-nat $SERVER_ARGS 2>"$T/server.log" & SERVER=$!
wait_for 60 kubectl get node bench >/dev/null 2>&1

deployment() { # name replicas [image]
  printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\nspec:\n  replicas: %s\n  selector:\n    matchLabels:\n      app: %s\n  template:\n    metadata:\n      labels:\n        app: %s\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: web\n        image: %s\n        imagePullPolicy: Never\n        ports:\n        - containerPort: 8080\n' "$1" "$2" "$1" "$1" "${3:-localhost/web:1.0}"
}
service() { # name app
  printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  selector:\n    app: %s\n  ports:\n  - port: 80\n    targetPort: 8080\n' "$1" "$2"
}
cluster_ip() { kubectl get svc "$1" -o jsonpath='{.spec.clusterIP}'; }
pod_ips() { kubectl get pods -l "app=$1" -o jsonpath='{.items[*].status.podIP}'; }
listing() { nft list table ip "$SVC_TABLE" 2>/dev/null; }
# A cluster IP is sent nothing before the proxy has it (in the map of Services with endpoints,
# or the one that refuses): until then its packets would follow the default route off the machine.
programmed() { listing | grep -qF "$1 . tcp . ${2:-80} :"; }
answers() { [ "$(curl -s -m 2 "$@")" = hello ]; }

# wrk_run SERIES wrk-arguments...: appends requests/s, p99 (ms) and errors to SERIES.{rps,p99,err}.
wrk_run() {
  local series=$1 out; shift
  out=$("${WRK[@]}" "$@")
  awk '/^Requests\/sec:/ {print $2}' <<< "$out" >> "$series.rps"
  awk '$1 == "99%" {v = $2; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else if (v ~ /s$/) v = v * 1000; print v}' \
    <<< "$out" >> "$series.p99"
  awk '/Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} /Non-2xx/ {e += $5} END {print e + 0}' <<< "$out" >> "$series.err"
}
errors() { awk '{s += $1} END {print s + 0}' "$1.err"; }

# 1. ClusterIP against one pod and against all three (a Lua setup gives each wrk thread one pod).
measure_http() {
  cat > "$T/pods.lua" <<'EOF'
-- wrk connects each thread to one address: thread i gets pod i (POD_IPS, space-separated).
local ips, n = {}, 0
for ip in string.gmatch(os.getenv("POD_IPS"), "%S+") do table.insert(ips, ip) end
function setup(thread)
  n = n + 1
  thread.addr = wrk.lookup(ips[(n - 1) % #ips + 1], "8080")[1]
end
EOF
  for _ in $(seq "$REPS"); do
    wrk_run "$T/cip" "http://$KWEB_IP/"
    wrk_run "$T/pod" "http://$KPOD1:8080/"
    POD_IPS="$KPOD_IPS" wrk_run "$T/pods" -s "$T/pods.lua" "http://$KPOD1:8080/"
    wrk_run "$T/cip_close" "http://$WEB_IP/"
    POD_IPS="$POD_IPS" wrk_run "$T/pods_close" -s "$T/pods.lua" "http://$POD1:8080/"
    in_client wrk_run "$T/cip_in" "http://$KWEB_IP/"
    POD_IPS="$KPOD_IPS" in_client wrk_run "$T/pods_in" -s "$T/pods.lua" "http://$KPOD1:8080/"
    POD_IPS="$KCIPS" wrk_run "$T/cips" -s "$T/pods.lua" "http://${KCIPS%% *}:8080/"
    POD_IPS="$KCIPS" in_client wrk_run "$T/cips_in" -s "$T/pods.lua" "http://${KCIPS%% *}:8080/"
  done
}
# in_client COMMAND...: run it (a shell function too) in the client pod's network namespace.
in_client() {
  local pid; pid=$(pgrep -f "sleep 31536000" | head -1)
  nsenter -t "$pid" -n -- bash -c "$(declare -f wrk_run dnsperf_run); WRK=(${WRK[*]}); T=$T DURATION=$DURATION DNS_RATE=$DNS_RATE; $(printf '%q ' "$@")"
}

# 2. New connections/s through the NodePort on the bridge address, against the pod straight.
measure_nodeport() {
  for _ in $(seq "$REPS"); do
    wrk_run "$T/np" -H 'Connection: close' "http://$GATEWAY:$NODE_PORT/"
    wrk_run "$T/np_pod" -H 'Connection: close' "http://$POD1:8080/"
  done
}

# 6. The ingress (which picks one of kweb's pods per request) against kweb's pods straight.
measure_ingress() {
  printf 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: kweb\nspec:\n  rules:\n  - host: bench.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: kweb\n            port:\n              number: 80\n' \
    | kubectl apply -f - >/dev/null
  wait_for 30 answers -H 'Host: bench.test' "http://127.0.0.1:$HTTP_PORT/"
  for _ in $(seq "$REPS"); do
    wrk_run "$T/ing" -H 'Host: bench.test' "http://127.0.0.1:$HTTP_PORT/"
    POD_IPS="$KPOD_IPS" wrk_run "$T/ing_pods" -s "$T/pods.lua" "http://$KPOD1:8080/"
  done
}

# 3. Ready endpoint -> traffic. One pod whose readiness is a file; per rep: remove the file and
# wait until the cluster IP refuses, open a watch on the Service's EndpointSlices (straight to
# the API with the admin certificate, not through kubectl, so the clock is the same as the
# connect loop's), connect every 2 ms, create the file, and take the ready event's arrival from
# the first connection's success. Negative: the rules were there before the watch delivered.
measure_ready() {
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: ready\n  labels:\n    app: ready\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: localhost/web:1.0\n    imagePullPolicy: Never\n    readinessProbe:\n      exec:\n        command: [cat, /tmp/ready]\n      periodSeconds: 1\n      failureThreshold: 1\n' \
    | kubectl apply -f - >/dev/null
  service ready ready | kubectl apply -f - >/dev/null
  local ip; ip=$(cluster_ip ready)
  wait_for 30 programmed "$ip"
  cat > "$T/ready.py" <<'EOF'
import http.client, json, socket, ssl, subprocess, sys, threading, time

ip, api_port, pki, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
WATCH = ('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices'
         '?watch=1&labelSelector=kubernetes.io%2Fservice-name%3Dready')
tls = ssl.create_default_context(cafile=f'{pki}/ca.crt')
tls.load_cert_chain(f'{pki}/admin.crt', f'{pki}/admin.key')

def connects(timeout):
    with socket.socket() as s:
        s.settimeout(timeout)
        try:
            s.connect((ip, 80))
            return True
        except OSError:
            return False

def in_pod(*command):
    subprocess.run(['kubectl', 'exec', 'ready', '--', *command], check=True, stdout=subprocess.DEVNULL)

def ready(event):
    return any((e.get('conditions') or {}).get('ready') for e in event['object'].get('endpoints') or [])

for _ in range(reps):
    in_pod('rm', '-f', '/tmp/ready')
    deadline = time.monotonic() + 30
    while connects(0.2):  # the Service with no ready endpoint refuses at once
        assert time.monotonic() < deadline, 'the endpoint did not go unready'
        time.sleep(0.01)
    api = http.client.HTTPSConnection('127.0.0.1', api_port, context=tls, timeout=30)
    api.request('GET', WATCH)
    events = api.getresponse()
    seen, unready = {}, threading.Event()

    def watch():
        for line in events:
            if not ready(json.loads(line)):
                unready.set()
            elif unready.is_set():  # a ready slice before the unready one is stale
                seen['ready'] = time.monotonic()
                return

    def knock():
        while 'open' not in seen and time.monotonic() < deadline:
            if connects(0.5):
                seen['open'] = time.monotonic()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert unready.wait(10), 'the watch did not show the endpoint unready'
    deadline = time.monotonic() + 30
    knocker = threading.Thread(target=knock, daemon=True)
    knocker.start()
    in_pod('touch', '/tmp/ready')
    watcher.join(30)
    knocker.join(30)
    api.close()
    assert 'ready' in seen and 'open' in seen, f'no ready endpoint or no connection: {seen}'
    print(f"{(seen['open'] - seen['ready']) * 1000:.1f}", flush=True)
EOF
  python3 "$T/ready.py" "$ip" "$PORT" "$T/data/pki" "$REPS" > "$T/ready"
}

# dnsperf_run SERIES SERVER PORT: flat out for DURATION s (queries/s, mean latency, lost), then
# at DNS_RATE for 5 s with each query's latency printed, for p50 and p99 (latencies in us).
dnsperf_run() {
  local out
  out=$(dnsperf -s "$2" -p "$3" -d "$T/queries" -l "$DURATION" 2>&1)
  awk '/Queries per second:/ {print $4}' <<< "$out" >> "$1.qps"
  awk '/Average Latency/ {print $4 * 1000000}' <<< "$out" >> "$1.avg"
  awk '/Queries lost:/ {print $3}' <<< "$out" >> "$1.lost"
  grep -q 'Response codes: *NOERROR [0-9]* (100.00%)' <<< "$out" || echo "$1: not all NOERROR: $(grep 'Response codes' <<< "$out")" >> "$T/notes"
  dnsperf -s "$2" -p "$3" -d "$T/queries" -l 5 -Q "$DNS_RATE" -v 2>/dev/null | awk '$1 == ">" {print $NF * 1000000}' | sort -g > "$T/lat"
  awk '{a[NR] = $1} END {print a[int(NR * 0.5) + 1]}' "$T/lat" >> "$1.p50"
  awk '{a[NR] = $1} END {i = int(NR * 0.99) + 1; if (i > NR) i = NR; print a[i]}' "$T/lat" >> "$1.p99"
}

# 5. Cluster DNS (on its address on the bridge) against dnsmasq answering the same names with the
# same addresses from a hosts file on loopback; only names both have, so neither forwards.
measure_dns() {
  : > "$T/queries"; : > "$T/hosts"
  local ns name
  for ns_name in default/web default/web-np default/ready default/kubernetes kube-system/kube-dns; do
    ns=${ns_name%/*}; name=${ns_name#*/}
    echo "$name.$ns.svc.cluster.local A" >> "$T/queries"
    echo "$(kubectl -n "$ns" get svc "$name" -o jsonpath='{.spec.clusterIP}') $name.$ns.svc.cluster.local" >> "$T/hosts"
  done
  dnsmasq -k --no-resolv --no-hosts --addn-hosts="$T/hosts" --port=5353 --listen-address=127.0.0.1 \
    --listen-address="$GATEWAY" --bind-interfaces --user=root --pid-file= --log-facility="$T/dnsmasq.log" & DNSMASQ=$!
  sleep 0.5
  for _ in $(seq "$REPS"); do
    dnsperf_run "$T/dns" "$DNS_IP" 53
    dnsperf_run "$T/dnsmasq" 127.0.0.1 5353
    # From a pod: both through its gateway (the cluster DNS's address is on the bridge too).
    in_client dnsperf_run "$T/dns_in" "$DNS_IP" 53
    in_client dnsperf_run "$T/dnsmasq_in" "$GATEWAY" 5353
  done
  kill "$DNSMASQ"; DNSMASQ=
}

# The service and endpoint chains of the many Services in the table: `nft list chains` names them
# without their rules, ten times faster than listing the table, which keeps the polls fine.
many_chains() {
  nft list chains ip | awk -v t="table ip $SVC_TABLE {" '$0 == t {f = 1; next} /^}/ {f = 0}
    f && /chain service-default\/many-/ {s++} f && /chain endpoint-default\/many-/ {e++} END {print s + 0, e + 0}'
}
chains_are() { [ "$(many_chains)" = "$1 $2" ]; }

# slices_at READY: in the background, a watch on the EndpointSlices that writes the time (ns, as
# `date +%s%N`) when every many-* Service's slice has READY ready endpoints to $T/slices_at, so
# that the API's share (the EndpointSlice controller's 1,000 writes) and the proxy's are apart.
slices_at() {
  cat > "$T/slices.py" <<'EOF'
import http.client, json, ssl, sys, time

api_port, pki, services, want = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tls = ssl.create_default_context(cafile=f'{pki}/ca.crt')
tls.load_cert_chain(f'{pki}/admin.crt', f'{pki}/admin.key')
api = http.client.HTTPSConnection('127.0.0.1', api_port, context=tls, timeout=600)
api.request('GET', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?watch=1')
ready = {}
for line in api.getresponse():
    event = json.loads(line)
    meta = event['object'].get('metadata') or {}
    if not (meta.get('labels') or {}).get('kubernetes.io/service-name', '').startswith('many-'):
        continue
    if event['type'] == 'DELETED':
        ready.pop(meta['name'], None)
        continue
    endpoints = event['object'].get('endpoints') or []
    ready[meta['name']] = sum(1 for e in endpoints if (e.get('conditions') or {}).get('ready'))
    if sum(1 for n in ready.values() if n == want) >= services:
        print(time.time_ns(), flush=True)
        break
EOF
  timeout 900 python3 "$T/slices.py" "$PORT" "$T/data/pki" "$SERVICES" "$1" > "$T/slices_at" &
  SLICES=$!
}
# slices_done: the watcher's time in ts, once it has one.
slices_done() {
  wait "$SLICES" || true; SLICES=
  ts=$(cat "$T/slices_at")
  [ -n "$ts" ] || { echo "the EndpointSlice watch did not see them all" >&2; return 1; }
}

# 4. SERVICES Services x ENDPOINTS endpoints, then one endpoint fewer; then the same table loaded
# by `nft -f` under another name (its hooks too: a copy of skiff's rules, deleted at once).
measure_rules() {
  deployment many "$ENDPOINTS" | kubectl apply -f - >/dev/null
  kubectl rollout status deploy/many --timeout=300s >/dev/null
  for i in $(seq -w 1 "$SERVICES"); do service "many-$i" many; echo ---; done > "$T/many.yaml"
  local t0 t1 t2 ts
  slices_at "$ENDPOINTS"
  t0=$(now)
  kubectl apply -f "$T/many.yaml" >/dev/null
  t1=$(now)
  ms "$t0" "$t1" > "$T/rules_apply"
  # Bounded: a proxy that cannot program this many is a finding to report, not a hang.
  if ! wait_for "$RULES_TIMEOUT" chains_are "$SERVICES" $((SERVICES * ENDPOINTS)) 2>/dev/null; then
    local svc eps; read -r svc eps < <(many_chains)
    echo "4. not programmed: after ${RULES_TIMEOUT} s the table held $svc of $SERVICES service chains and $eps of $((SERVICES * ENDPOINTS)) endpoint chains;" \
      "the server's last proxy warning: $(grep 'net::proxy' "$T/server.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200)" >> "$T/notes"
    echo "   (no scale measurement; the anchor below loads the table as skiff left it)" >> "$T/notes"
    kill "$SLICES" 2>/dev/null; SLICES=
    listing | sed "1s/^table ip $SVC_TABLE /table ip $ANCHOR_TABLE /" > "$T/rules.nft"
    nft_anchor
    return
  fi
  t2=$(now); slices_done
  ms "$t1" "$t2" > "$T/rules_after"; ms "$t0" "$t2" > "$T/rules_total"
  ms "$t0" "$ts" > "$T/rules_slices"; ms "$ts" "$t2" > "$T/rules_lag"
  # How long one poll takes: the resolution of the times above and below.
  : > "$T/poll"
  for _ in $(seq 5); do t0=$(now); many_chains > /dev/null; ms "$t0" "$(now)" >> "$T/poll"; done
  listing | sed "1s/^table ip $SVC_TABLE /table ip $ANCHOR_TABLE /" > "$T/rules.nft"
  : > "$T/scale"; : > "$T/scale_slices"; : > "$T/scale_lag"
  for _ in $(seq "$REPS"); do
    slices_at $((ENDPOINTS - 1))
    t0=$(now); kubectl scale deploy many --replicas=$((ENDPOINTS - 1)) >/dev/null
    wait_for 300 chains_are "$SERVICES" $((SERVICES * (ENDPOINTS - 1)))
    t2=$(now); slices_done
    ms "$t0" "$t2" >> "$T/scale"; ms "$t0" "$ts" >> "$T/scale_slices"; ms "$ts" "$t2" >> "$T/scale_lag"
    kubectl scale deploy many --replicas="$ENDPOINTS" >/dev/null
    wait_for 300 chains_are "$SERVICES" $((SERVICES * ENDPOINTS))
  done
  nft_anchor
}

# The anchor: `nft -f` of the table's text (rules.nft) as a table of another name, REPS times.
nft_anchor() {
  local t0
  for _ in $(seq "$REPS"); do
    t0=$(now)
    if ! nft -f "$T/rules.nft" 2> "$T/nftf.err"; then
      echo "4. nft -f refused skiff's listing: $(head -3 "$T/nftf.err")" >> "$T/notes"; break
    fi
    ms "$t0" "$(now)" >> "$T/nftf"
    nft delete table ip "$ANCHOR_TABLE"
  done
}

# The common backends: web (3 pods) behind a ClusterIP and a NodePort Service, kweb (3 pods)
# behind a ClusterIP.
deployment web 3 | kubectl apply -f - >/dev/null
deployment kweb 3 localhost/kweb:1.0 | kubectl apply -f - >/dev/null
kubectl rollout status deploy/web --timeout=120s >/dev/null
kubectl rollout status deploy/kweb --timeout=120s >/dev/null
kubectl expose deployment kweb --port=80 --target-port=8080 >/dev/null
KWEB_IP=$(cluster_ip kweb); KPOD_IPS=$(pod_ips kweb); KPOD1=${KPOD_IPS%% *}
wait_for 30 programmed "$KWEB_IP"; wait_for 30 answers "http://$KWEB_IP/"
for ip in $KPOD_IPS; do wait_for 30 answers "http://$ip:8080/"; done
# One Service per kweb pod (kweb-0..2, port 8080): wrk thread i to Service i sends the same
# connections to the same pods as thread i to pod i, so only the path differs (1d).
KCIPS=""; KPOD_IPS=""; i=0
for pod in $(kubectl get pods -l app=kweb -o jsonpath='{.items[*].metadata.name}'); do
  kubectl label pod "$pod" kweb-pod=$i >/dev/null
  printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: kweb-%s\nspec:\n  selector: {app: kweb, kweb-pod: "%s"}\n  ports:\n  - {port: 8080, targetPort: 8080}\n' \
    $i $i | kubectl apply -f - >/dev/null
  KCIPS="$KCIPS $(cluster_ip kweb-$i)"
  KPOD_IPS="$KPOD_IPS $(kubectl get pod "$pod" -o jsonpath='{.status.podIP}')"
  i=$((i + 1))
done
KCIPS=${KCIPS# }; KPOD_IPS=${KPOD_IPS# }; KPOD1=${KPOD_IPS%% *}
for ip in $KCIPS; do wait_for 30 programmed "$ip" 8080; wait_for 30 answers "http://$ip:8080/"; done
kubectl expose deployment web --port=80 --target-port=8080 >/dev/null
kubectl expose deployment web --name=web-np --type=NodePort --port=80 --target-port=8080 >/dev/null
WEB_IP=$(cluster_ip web); NP_IP=$(cluster_ip web-np)
NODE_PORT=$(kubectl get svc web-np -o jsonpath='{.spec.ports[0].nodePort}')
POD_IPS=$(pod_ips web); POD1=${POD_IPS%% *}
wait_for 30 programmed "$WEB_IP"; wait_for 30 programmed "$NP_IP"
wait_for 30 answers "http://$WEB_IP/"; wait_for 30 answers "http://$GATEWAY:$NODE_PORT/"
for ip in $POD_IPS; do wait_for 30 answers "http://$ip:8080/"; done
# The client pod 1c measures from: it only sleeps.
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  containers:\n  - name: c\n    image: localhost/web:1.0\n    imagePullPolicy: Never\n    command: ["sleep", "31536000"]\n' \
  | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Ready pod/client --timeout=60s >/dev/null
: > "$T/notes"

measure_http
measure_nodeport
measure_ingress
measure_ready
measure_dns
measure_rules

echo
echo "skiff services, $(nproc) cores, REPS=$REPS, wrk ${WRK[*]:1}, dnsperf ${DURATION} s flat out + 5 s at $DNS_RATE/s"
echo "skiff at $(git rev-parse --short HEAD 2>/dev/null || echo '?') (the binary: $SKIFF, built $(date -r "$SKIFF" '+%F %T'))"
echo "load average at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
echo
echo "| measurement | median | min | max | n | unit |"
echo "|---|---:|---:|---:|---:|---|"
row "1. HTTP keep-alive via ClusterIP (3 nginx pods)" "$T/cip.rps" req/s
row "1. HTTP keep-alive straight to one pod IP" "$T/pod.rps" req/s
row "1. HTTP keep-alive straight to the 3 pod IPs (one per wrk thread)" "$T/pods.rps" req/s
row "1. p99 via ClusterIP" "$T/cip.p99" ms
row "1. p99 straight to one pod IP" "$T/pod.p99" ms
row "1. p99 straight to the 3 pod IPs" "$T/pods.p99" ms
row "1c. from a pod: HTTP keep-alive via ClusterIP" "$T/cip_in.rps" req/s
row "1c. from a pod: HTTP keep-alive straight to the 3 pod IPs" "$T/pods_in.rps" req/s
row "1c. from a pod: p99 via ClusterIP" "$T/cip_in.p99" ms
row "1c. from a pod: p99 straight to the 3 pod IPs" "$T/pods_in.p99" ms
row "1d. HTTP keep-alive, thread i via Service i's ClusterIP (one pod each)" "$T/cips.rps" req/s
row "1d. p99 via the 3 single-pod ClusterIPs" "$T/cips.p99" ms
row "1d. from a pod: HTTP keep-alive via the 3 single-pod ClusterIPs" "$T/cips_in.rps" req/s
row "1d. from a pod: p99 via the 3 single-pod ClusterIPs" "$T/cips_in.p99" ms
row "1b. HTTP, a connection per request, via ClusterIP (3 busybox pods)" "$T/cip_close.rps" req/s
row "1b. HTTP, a connection per request, straight to the 3 pod IPs" "$T/pods_close.rps" req/s
row "1b. p99 via ClusterIP" "$T/cip_close.p99" ms
row "1b. p99 straight to the 3 pod IPs" "$T/pods_close.p99" ms
row "2. Connection: close via NodePort ($GATEWAY)" "$T/np.rps" conn/s
row "2. Connection: close straight to one pod IP" "$T/np_pod.rps" conn/s
row "2. p99 via NodePort" "$T/np.p99" ms
row "2. p99 straight to one pod IP" "$T/np_pod.p99" ms
row "6. HTTP keep-alive via the ingress (Host: bench.test, 3 nginx pods)" "$T/ing.rps" req/s
row "6. HTTP keep-alive straight to the 3 pod IPs" "$T/ing_pods.rps" req/s
row "6. p99 via the ingress" "$T/ing.p99" ms
row "6. p99 straight to the 3 pod IPs" "$T/ing_pods.p99" ms
row "3. ready EndpointSlice seen -> first connection via ClusterIP" "$T/ready" ms
row "5. cluster DNS, flat out" "$T/dns.qps" q/s
row "5. dnsmasq (hosts file), flat out" "$T/dnsmasq.qps" q/s
row "5. cluster DNS, mean latency flat out" "$T/dns.avg" us
row "5. dnsmasq, mean latency flat out" "$T/dnsmasq.avg" us
row "5. cluster DNS, p50 at $DNS_RATE q/s" "$T/dns.p50" us
row "5. dnsmasq, p50 at $DNS_RATE q/s" "$T/dnsmasq.p50" us
row "5. cluster DNS, p99 at $DNS_RATE q/s" "$T/dns.p99" us
row "5. dnsmasq, p99 at $DNS_RATE q/s" "$T/dnsmasq.p99" us
row "5b. from a pod: cluster DNS, flat out" "$T/dns_in.qps" q/s
row "5b. from a pod: dnsmasq on the node (gateway), flat out" "$T/dnsmasq_in.qps" q/s
row "5b. from a pod: cluster DNS, p99 at $DNS_RATE q/s" "$T/dns_in.p99" us
row "5b. from a pod: dnsmasq, p99 at $DNS_RATE q/s" "$T/dnsmasq_in.p99" us
row "4. $SERVICES Services: kubectl apply itself" "$T/rules_apply" ms
row "4. $SERVICES Services: apply returned -> all chains in the table" "$T/rules_after" ms
row "4. $SERVICES Services: apply started -> all chains in the table" "$T/rules_total" ms
row "4. $SERVICES Services: apply started -> all EndpointSlices complete" "$T/rules_slices" ms
row "4. $SERVICES Services: last EndpointSlice complete -> table" "$T/rules_lag" ms
row "4. scale $ENDPOINTS -> $((ENDPOINTS - 1)) -> gone from all $SERVICES Services' chains" "$T/scale" ms
row "4. scale $ENDPOINTS -> $((ENDPOINTS - 1)) -> all $SERVICES EndpointSlices updated" "$T/scale_slices" ms
row "4. scale: last EndpointSlice updated -> table" "$T/scale_lag" ms
row "4. anchor: nft -f of the same table as text" "$T/nftf" ms
row "4. one poll of the table's chains (resolution)" "$T/poll" ms
echo
echo "ClusterIP / one pod (keep-alive req/s): $(ratio "$(median "$T/cip.rps")" "$(median "$T/pod.rps")")"
echo "ClusterIP / three pods (keep-alive req/s; random balancing of 30 connections): $(ratio "$(median "$T/cip.rps")" "$(median "$T/pods.rps")")"
echo "from a pod: ClusterIP / three pods (keep-alive req/s): $(ratio "$(median "$T/cip_in.rps")" "$(median "$T/pods_in.rps")")"
echo "1d. same connections, same pods: ClusterIP / pod IP (keep-alive req/s, goal >= 0.95): $(ratio "$(median "$T/cips.rps")" "$(median "$T/pods.rps")"), p99 $(ratio "$(median "$T/cips.p99")" "$(median "$T/pods.p99")")"
echo "1d. from a pod: ClusterIP / pod IP (keep-alive req/s, goal >= 0.95): $(ratio "$(median "$T/cips_in.rps")" "$(median "$T/pods_in.rps")"), p99 $(ratio "$(median "$T/cips_in.p99")" "$(median "$T/pods_in.p99")")"
echo "ClusterIP / three pods (a connection per request): $(ratio "$(median "$T/cip_close.rps")" "$(median "$T/pods_close.rps")")"
echo "NodePort / direct (new connections/s): $(ratio "$(median "$T/np.rps")" "$(median "$T/np_pod.rps")")"
echo "ingress / direct to the same 3 pods (keep-alive req/s): $(ratio "$(median "$T/ing.rps")" "$(median "$T/ing_pods.rps")")"
echo "ready -> traffic (goal < 100 ms): median $(median "$T/ready") ms"
echo "cluster DNS / dnsmasq (q/s): $(ratio "$(median "$T/dns.qps")" "$(median "$T/dnsmasq.qps")")"
echo "from a pod: cluster DNS / dnsmasq on the node (q/s): $(ratio "$(median "$T/dns_in.qps")" "$(median "$T/dnsmasq_in.qps")"), p99 $(ratio "$(median "$T/dns_in.p99")" "$(median "$T/dnsmasq_in.p99")")"
[ -s "$T/nftf" ] && [ -s "$T/rules_after" ] && echo "skiff after apply / nft -f of the same rules: $(ratio "$(median "$T/rules_after")" "$(median "$T/nftf")")"
echo "the table as text: $(wc -l < "$T/rules.nft") lines, $(grep -c '^	chain ' "$T/rules.nft") chains"
echo "wrk errors (socket + non-2xx, all runs): ClusterIP $(errors "$T/cip"), one pod $(errors "$T/pod"), three pods $(errors "$T/pods"), 1b ClusterIP $(errors "$T/cip_close"), 1b pods $(errors "$T/pods_close"), NodePort $(errors "$T/np"), direct $(errors "$T/np_pod"), ingress $(errors "$T/ing"), direct $(errors "$T/ing_pods")"
echo "DNS queries lost (all runs): cluster DNS $(awk '{s += $1} END {print s + 0}' "$T/dns.lost"), dnsmasq $(awk '{s += $1} END {print s + 0}' "$T/dnsmasq.lost"), from a pod $(cat "$T/dns_in.lost" "$T/dnsmasq_in.lost" | awk '{s += $1} END {print s + 0}')"
[ -s "$T/notes" ] && cat "$T/notes"
exit 0
