#!/usr/bin/env python3
"""Load and fault generator for bench/apiserver.sh (Python 3 standard library only).

Every subcommand talks to one `skiff server` on 127.0.0.1 over HTTPS (certificate not verified),
authenticating with the bearer token, and samples the server's /proc/PID/{status,fd,stat}. Figures
are appended to the results file (--out) as `key value` lines, which bench/apiserver.sh reads.

  create   --count N --threads T            N pods with ~1 KiB of labels/annotations in ns `load`
  lists    --lists L --expect N             L concurrent GET /api/v1/pods (no limit); RSS peak, +5 s, +30 s
  updates  --updates U --big-bytes B        U merge patches (a label) of one pod carrying B bytes
  slow     --conns C --header-timeout S     C TLS connections sending half a request header
  rates    --clients 1,8,32 --seconds D     creates/s with K threads, each its own keep-alive connection
  resume-rv                                 list pods, print the list's resourceVersion
  resume-watch --rv RV --pods P             create P pods, watch from RV, count ADDED / ERROR 410
  wait-ready                                until the API answers (or the server process is gone)

Exit status: 0 on success, 2 when the server process died, 1 on any other failure.
"""
import argparse
import hashlib
import http.client
import json
import urllib.parse
import os
import selectors
import socket
import ssl
import statistics
import sys
import threading
import time

HOST = "127.0.0.1"


class ServerDied(Exception):
    pass


class Failure(Exception):
    pass


# --- the server process -----------------------------------------------------------------------

def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise ServerDied(f"server (pid {pid}) is gone")


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        raise ServerDied(f"server (pid {pid}) is gone")


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); index 0 here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        raise ServerDied(f"server (pid {pid}) is gone")


def machine_busy_seconds():
    """CPU time all processes spent, from /proc/stat (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


class CpuWindow:
    """CPU used by the server, by this client and by everything else between start() and stop(),
    as percentages of one core."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t0 = time.monotonic()
        self.s0, self.c0, self.m0 = cpu_seconds(self.pid), own_cpu_seconds(), machine_busy_seconds()

    def stop(self):
        dt = time.monotonic() - self.t0
        server = cpu_seconds(self.pid) - self.s0
        client = own_cpu_seconds() - self.c0
        machine = machine_busy_seconds() - self.m0
        self.server, self.client = 100 * server / dt, 100 * client / dt
        self.other = max(0.0, 100 * (machine - server - client) / dt)

    def record(self, cfg, prefix):
        cfg.record(f"{prefix}_server_cpu", self.server)
        cfg.record(f"{prefix}_client_cpu", self.client)
        cfg.record(f"{prefix}_other_cpu", self.other)


def mib(kib):
    return kib / 1024.0


class Sampler(threading.Thread):
    """VmRSS every `period` seconds; the peak seen, and whether the process vanished."""

    def __init__(self, pid, period=0.02):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak = 0
        self.samples = 0
        self.died = False
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
                self.samples += 1
            except ServerDied:
                self.died = True
                return
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()
        if self.died:
            raise ServerDied(f"server (pid {self.pid}) died while being sampled")
        return self.peak


# --- HTTP ------------------------------------------------------------------------------------

def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def read_kubeconfig(data_dir):
    """`server:` from DATA_DIR/kubeconfig.yaml, and `token:` from it when it has one; skiff's
    kubeconfig authenticates with the client certificate, so the token otherwise comes from
    DATA_DIR/pki/token (the same token the server accepts as a bearer token)."""
    server = token = None
    with open(os.path.join(data_dir, "kubeconfig.yaml")) as f:
        for line in f:
            s = line.strip()
            if s.startswith("server:") and server is None:
                server = s.split(":", 1)[1].strip()
            elif s.startswith("token:") and token is None:
                token = s.split(":", 1)[1].strip().strip("\"'")
    if token is None:
        with open(os.path.join(data_dir, "pki", "token")) as f:
            token = f.read().strip()
    if not server or not server.startswith("https://"):
        raise Failure(f"no https server in {data_dir}/kubeconfig.yaml: {server!r}")
    hostport = server[len("https://"):].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        raise Failure(f"refusing to send load to {host}: this suite only talks to 127.0.0.1")
    return int(port), token


class Client:
    """One keep-alive HTTPS connection. A connection dropped between requests is reopened once
    (the server closes idle ones); the number of reopenings is counted."""

    def __init__(self, cfg, timeout=120):
        self.cfg, self.timeout = cfg, timeout
        self.conn = None
        self.reconnects = 0

    def _open(self):
        self.conn = http.client.HTTPSConnection(HOST, self.cfg.port, context=self.cfg.ctx, timeout=self.timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, ctype="application/json", expect=(200,), stream=False):
        headers = {"Authorization": f"Bearer {self.cfg.token}", "Accept": "application/json"}
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = ctype
        for attempt in (0, 1):
            if self.conn is None:
                self._open()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine,
                    ssl.SSLError, socket.timeout, OSError) as e:
                self.close()
                if not alive(self.cfg.pid):
                    raise ServerDied(f"server died during {method} {path}: {e!r}")
                if attempt == 1:
                    raise Failure(f"{method} {path}: {e!r}")
                self.reconnects += 1
        if stream:
            if resp.status not in expect:
                data = resp.read()
                raise Failure(f"{method} {path}: HTTP {resp.status}: {data[:400]!r}")
            return resp
        try:
            data = resp.read()
        except (ConnectionError, http.client.IncompleteRead, ssl.SSLError, OSError) as e:
            self.close()
            if not alive(self.cfg.pid):
                raise ServerDied(f"server died during {method} {path}: {e!r}")
            raise Failure(f"{method} {path}: reading the body: {e!r}")
        if resp.status not in expect:
            raise Failure(f"{method} {path}: HTTP {resp.status}: {data[:400]!r}")
        if resp.will_close:
            self.close()
        return resp.status, data


class Config:
    def __init__(self, args):
        self.port, self.token = read_kubeconfig(args.data)
        self.pid = args.pid
        self.ctx = tls_context()
        self.out = args.out

    def record(self, key, value):
        if isinstance(value, float):
            value = f"{value:.3f}"
        line = f"{key} {value}"
        print(f"  {line}", file=sys.stderr)
        if self.out:
            with open(self.out, "a") as f:
                f.write(line + "\n")


def ensure_namespace(client, name):
    client.request("POST", "/api/v1/namespaces",
                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                   expect=(201, 409))


def pod_body(name, i):
    """A small valid Pod with ~1 KiB of labels and annotations."""
    h = hashlib.sha256(name.encode()).hexdigest()  # 64 hex chars
    labels = {"app": "load", "idx": str(i)}
    for k in range(8):
        labels[f"bench.skiff.dev/l{k}"] = (h[k:] + h)[:40]
    annotations = {"bench.skiff.dev/note": (h * 8)[:480]}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def run_threads(n, target):
    """n threads running target(t); the first exception of any thread is re-raised."""
    errors = []

    def wrap(t):
        try:
            target(t)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(t,), daemon=True) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        died = [e for e in errors if isinstance(e, ServerDied)]
        raise died[0] if died else errors[0]


# --- subcommands ------------------------------------------------------------------------------

def cmd_wait_ready(cfg, args):
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        if not alive(cfg.pid):
            raise ServerDied("server exited while starting")
        c = Client(cfg, timeout=2)
        try:
            c.request("GET", "/api/v1/namespaces/default")
            return
        except (Failure, OSError):
            time.sleep(0.1)
        finally:
            c.close()
    raise Failure(f"the API did not answer within {args.timeout} s")


def cmd_rss(cfg, args):
    cfg.record(args.key, mib(rss_kib(cfg.pid)))


def cmd_create(cfg, args):
    c = Client(cfg)
    ensure_namespace(c, args.namespace)
    c.close()
    stored = [0] * args.threads
    reconnects = [0] * args.threads
    sample_body = json.dumps(pod_body("p-00000", 0), separators=(",", ":"))
    t0 = time.monotonic()

    def work(t):
        cl = Client(cfg)
        for i in range(t, args.count, args.threads):
            name = f"p-{i:05d}"
            _, data = cl.request("POST", f"/api/v1/namespaces/{args.namespace}/pods", pod_body(name, i), expect=(201,))
            stored[t] += len(data)
        reconnects[t] = cl.reconnects
        cl.close()

    run_threads(args.threads, work)
    dt = time.monotonic() - t0
    cfg.record("create_count", args.count)
    cfg.record("create_request_bytes", len(sample_body))
    cfg.record("create_seconds", dt)
    cfg.record("create_rate", args.count / dt)
    cfg.record("stored_mib", sum(stored) / 1048576)
    cfg.record("create_reconnects", sum(reconnects))
    cfg.record("rss_after_create", mib(rss_kib(cfg.pid)))


def cmd_lists(cfg, args):
    sampler = Sampler(cfg.pid)
    sizes = [0] * args.lists
    keep = {}
    barrier = threading.Barrier(args.lists)
    clients = [Client(cfg, timeout=300) for _ in range(args.lists)]
    for cl in clients:  # connect (and handshake) before the clock starts
        cl.request("GET", "/api/v1/namespaces/default")

    def work(t):
        barrier.wait()
        resp = clients[t].request("GET", "/api/v1/pods", stream=True)
        parts = []
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            sizes[t] += len(chunk)
            if t == 0:
                parts.append(chunk)
        if t == 0:
            keep["body"] = b"".join(parts)
        clients[t].close()

    sampler.start()
    cpu = CpuWindow(cfg.pid)
    cpu.start()
    t0 = time.monotonic()
    run_threads(args.lists, work)
    dt = time.monotonic() - t0
    cpu.stop()
    peak = sampler.stop()
    done = time.monotonic()
    items = len(json.loads(keep["body"])["items"])
    keep.clear()
    if items < args.expect:
        raise Failure(f"a full list returned {items} pods, expected at least {args.expect}")
    cfg.record("lists_n", args.lists)
    cfg.record("lists_seconds", dt)
    cfg.record("list_items", items)
    cfg.record("list_mib", statistics.median(sizes) / 1048576)
    cfg.record("lists_peak_rss", mib(peak))
    cfg.record("lists_samples", sampler.samples)
    cpu.record(cfg, "lists")
    time.sleep(max(0.0, done + 5 - time.monotonic()))
    cfg.record("lists_rss_5s", mib(rss_kib(cfg.pid)))
    time.sleep(max(0.0, done + 30 - time.monotonic()))
    cfg.record("lists_rss_30s", mib(rss_kib(cfg.pid)))


def cmd_pages(cfg, args):
    """The pagination comparison without kubectl: one client (no client-side rate limit) reads
    every pod as Table pages of `limit` (following continue tokens) and as one unpaginated Table
    response, alternately, `reps` times each; medians."""
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    client = Client(cfg, timeout=300)

    def read(limit):
        t0, items, token = time.monotonic(), 0, None
        while True:
            query = f"limit={limit}" if limit else ""
            if token:
                query += "&continue=" + urllib.parse.quote(token)
            client.conn or client._open()
            client.conn.request("GET", "/api/v1/pods?" + query,
                                headers={"Authorization": f"Bearer {cfg.token}", "Accept": table})
            resp = client.conn.getresponse()
            body = json.loads(resp.read())
            if resp.status != 200:
                raise Failure(f"GET /api/v1/pods?{query}: HTTP {resp.status}")
            items += len(body["rows"])
            token = body["metadata"].get("continue")
            if not limit or not token:
                return time.monotonic() - t0, items

    paged, full = [], []
    for _ in range(args.reps):
        dt, n_paged = read(args.limit)
        paged.append(dt)
        dt, n_full = read(0)
        full.append(dt)
    if n_paged != n_full:
        raise Failure(f"paginated read {n_paged} pods, unpaginated {n_full}")
    cfg.record("pages_paged_ms", statistics.median(paged) * 1000)
    cfg.record("pages_full_ms", statistics.median(full) * 1000)


def cmd_updates(cfg, args):
    c = Client(cfg)
    ensure_namespace(c, args.namespace)
    body = pod_body("big", 0)
    # Kubernetes caps a pod's annotations at 256 KiB in total (skiff validates as upstream), so
    # the big payload rides in a container env value; the object stored is as large either way.
    body["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "x" * args.big_bytes}]
    _, data = c.request("POST", f"/api/v1/namespaces/{args.namespace}/pods", body, expect=(201,))
    cfg.record("big_pod_mib", len(data) / 1048576)
    path = f"/api/v1/namespaces/{args.namespace}/pods/big"
    rss_before = rss_kib(cfg.pid)
    sampler = Sampler(cfg.pid)
    sampler.start()
    t0 = time.monotonic()
    for i in range(args.updates):
        _, data = c.request("PATCH", path, {"metadata": {"labels": {"rev": str(i)}}},
                            ctype="application/merge-patch+json")
        if i == args.updates - 1 and json.loads(data)["metadata"]["labels"].get("rev") != str(i):
            raise Failure("the last patch did not take")
    dt = time.monotonic() - t0
    peak = sampler.stop()
    done = time.monotonic()
    cfg.record("updates_n", args.updates)
    cfg.record("updates_seconds", dt)
    cfg.record("updates_rss_before", mib(rss_before))
    cfg.record("updates_peak_rss", mib(peak))
    cfg.record("updates_reconnects", c.reconnects)
    c.close()
    time.sleep(max(0.0, done + 5 - time.monotonic()))
    cfg.record("updates_rss_5s", mib(rss_kib(cfg.pid)))
    time.sleep(max(0.0, done + 30 - time.monotonic()))
    cfg.record("updates_rss_30s", mib(rss_kib(cfg.pid)))
    c = Client(cfg)
    c.request("DELETE", path, expect=(200, 202))
    c.close()


def cmd_stalled_watch(cfg, args):
    """A watch that is opened and never read while `count` objects of `kib` KiB are written:
    the server's RSS before, at its peak and after; then the watch is read to see what it got
    (every event, or a 410 if compaction passed it)."""
    c = Client(cfg)
    ensure_namespace(c, args.namespace)
    _, data = c.request("GET", f"/api/v1/namespaces/{args.namespace}/pods")
    rv = json.loads(data)["metadata"]["resourceVersion"]
    # A small receive buffer (set before connecting: it also fixes the window's scale), so that
    # the server, not the kernel, holds back what the client does not read. 64 KiB, not less:
    # a 4 KiB window later reads at ~40 KiB/s (a delayed ACK per window on loopback).
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    raw.settimeout(60)
    raw.connect((HOST, cfg.port))
    w = cfg.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    w.sendall((f"GET /api/v1/namespaces/{args.namespace}/pods?watch=1&resourceVersion={rv} HTTP/1.1\r\n"
               f"Host: x\r\nAuthorization: Bearer {cfg.token}\r\n\r\n").encode())
    rss_before = rss_kib(cfg.pid)
    sampler = Sampler(cfg.pid)
    sampler.start()
    blob = "x" * (args.kib * 1024)
    made = [0]

    def work(t):
        cl = Client(cfg)
        for i in range(t, args.count, 8):
            body = pod_body(f"s-{i:05d}", i)
            body["metadata"]["annotations"] = {"blob": blob}
            cl.request("POST", f"/api/v1/namespaces/{args.namespace}/pods", body, expect=(201,))
            made[0] += 1
        cl.close()

    run_threads(8, work)
    peak = sampler.stop()
    cfg.record("stalled_written", made[0])
    cfg.record("stalled_written_mib", made[0] * args.kib / 1024)
    cfg.record("stalled_rss_before", mib(rss_before))
    cfg.record("stalled_peak_rss", mib(peak))
    # Now read what the watch delivers: until every event or a 410 came, nothing came for 10 s,
    # or 120 s passed. A marker is counted in the previous chunk's tail (too short to hold a
    # whole one) plus the new chunk, so one split across two reads counts once.
    added_marker, gone_marker = b'"type":"ADDED"', b'"code":410'
    keep = max(len(added_marker), len(gone_marker)) - 1
    w.settimeout(10)
    deadline = time.monotonic() + 120
    tail, added, expired = b"", 0, 0
    try:
        while time.monotonic() < deadline and added < made[0] and not expired:
            chunk = w.recv(1 << 20)
            if not chunk:
                break
            buf = tail + chunk
            added += buf.count(added_marker)
            expired += buf.count(gone_marker)
            tail = buf[-keep:]
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    w.close()
    cfg.record("stalled_added", added)
    cfg.record("stalled_410", expired)
    cfg.record("stalled_rss_after", mib(rss_kib(cfg.pid)))
    c.close()


def cmd_many_lists(cfg, args):
    """`lists` concurrent full lists: how many got 200 and how many upstream's 429, peak RSS, and
    the size of one full list (every pod the earlier phases left: more than the first 10,000)."""
    sampler = Sampler(cfg.pid)
    codes, sizes = [], []
    barrier = threading.Barrier(args.lists)
    clients = [Client(cfg, timeout=300) for _ in range(args.lists)]
    for cl in clients:
        cl.request("GET", "/api/v1/namespaces/default")

    def work(t):
        barrier.wait()
        resp = clients[t].request("GET", "/api/v1/pods", stream=True, expect=(200, 429))
        size = 0
        while chunk := resp.read(1 << 20):
            size += len(chunk)
        codes.append(resp.status)
        if resp.status == 200:
            sizes.append(size)
        clients[t].close()

    sampler.start()
    t0 = time.monotonic()
    run_threads(args.lists, work)
    cfg.record("many_lists_seconds", time.monotonic() - t0)
    cfg.record("many_lists_peak_rss", mib(sampler.stop()))
    cfg.record("many_lists_200", codes.count(200))
    cfg.record("many_lists_429", codes.count(429))
    cfg.record("many_lists_mib", statistics.median(sizes) / 1048576 if sizes else 0)


def cmd_idle(cfg, args):
    """`conns` TLS connections that each make one request and then stay idle: how many the
    server closed within its idle timeout (+1 s), fds while held."""
    fds_before = fd_count(cfg.pid)
    conns = []
    request = f"GET /version HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    for _ in range(args.conns):
        raw = socket.create_connection((HOST, cfg.port), timeout=10)
        s = cfg.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(request)
        s.recv(65536)
        s.setblocking(False)
        conns.append(s)
    opened = time.monotonic()
    fds_held = fd_count(cfg.pid)
    sel = selectors.DefaultSelector()
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = opened + args.idle_timeout + 5
    while closed < len(conns) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            try:
                if key.fileobj.recv(65536):
                    continue
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                pass
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
    took = time.monotonic() - opened
    for s in conns:
        try:
            s.close()
        except OSError:
            pass
    cfg.record("idle_conns", len(conns))
    cfg.record("idle_fds_before", fds_before)
    cfg.record("idle_fds_held", fds_held)
    cfg.record("idle_closed", closed)
    cfg.record("idle_close_seconds", took)


def cmd_slow(cfg, args):
    fds_before = fd_count(cfg.pid)
    partial = b"GET /api HTTP/1.1\r\nHost: x\r\n"
    sel = selectors.DefaultSelector()
    sent_at = {}
    closed_at = {}
    responded = 0
    open_failed = 0
    t_open = time.monotonic()
    for _ in range(args.conns):
        try:
            raw = socket.create_connection((HOST, cfg.port), timeout=10)
            s = cfg.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(partial)
        except OSError:
            open_failed += 1
            continue
        s.setblocking(False)
        sent_at[s] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
    open_seconds = time.monotonic() - t_open
    held = len(sent_at)
    # What the server holds now, and whether it still answers someone else.
    fds_held = fd_count(cfg.pid)
    c = Client(cfg, timeout=30)
    t0 = time.monotonic()
    get_ok = 0
    try:
        status, _ = c.request("GET", "/api/v1/namespaces")
        get_ok = int(status == 200)
    except Failure as e:
        print(f"  GET /api/v1/namespaces while held: {e}", file=sys.stderr)
    get_ms = (time.monotonic() - t0) * 1000
    c.close()
    deadline = t_open + args.window
    while len(closed_at) < held and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        raise EOFError
                    responded += 1  # e.g. a 408 before the close; the close is what counts
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except (EOFError, OSError, ssl.SSLError):
                closed_at[s] = time.monotonic()
                sel.unregister(s)
        if not alive(cfg.pid):
            raise ServerDied("server died while slow connections were held")
    fds_after = fd_count(cfg.pid)
    after = [closed_at[s] - sent_at[s] for s in closed_at]
    for s in sent_at:
        s.close()
    cfg.record("slow_conns", args.conns)
    cfg.record("slow_open_failed", open_failed)
    cfg.record("slow_open_seconds", open_seconds)
    cfg.record("slow_fds_before", fds_before)
    cfg.record("slow_fds_held", fds_held)
    cfg.record("slow_get_ok", get_ok)
    cfg.record("slow_get_ms", get_ms)
    cfg.record("slow_closed", len(closed_at))
    cfg.record("slow_responses", responded)
    cfg.record("slow_close_median_s", statistics.median(after) if after else -1.0)
    cfg.record("slow_close_max_s", max(after) if after else -1.0)
    cfg.record("slow_closed_within_timeout", sum(1 for a in after if a <= args.header_timeout + args.grace))
    cfg.record("slow_fds_after", fds_after)


def cmd_rates(cfg, args):
    for k in [int(x) for x in args.clients.split(",")]:
        ns = f"rate-{k}"
        c = Client(cfg)
        ensure_namespace(c, ns)
        c.close()
        clients = [Client(cfg) for _ in range(k)]
        for cl in clients:  # connect before the clock starts
            cl.request("GET", f"/api/v1/namespaces/{ns}")
        counts = [0] * k
        barrier = threading.Barrier(k + 1)
        state = {}

        def work(t):
            cl = clients[t]
            barrier.wait()
            i = 0
            while time.monotonic() < state["end"]:
                name = f"r{k}-{t}-{i}"
                cl.request("POST", f"/api/v1/namespaces/{ns}/pods", pod_body(name, i), expect=(201,))
                counts[t] += 1
                i += 1
            cl.close()

        threads = []
        errors = []

        def wrap(t):
            try:
                work(t)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                try:
                    barrier.abort()
                except Exception:  # noqa: BLE001
                    pass

        for t in range(k):
            th = threading.Thread(target=wrap, args=(t,), daemon=True)
            th.start()
            threads.append(th)
        cpu = CpuWindow(cfg.pid)
        cpu.start()
        state["end"] = time.monotonic() + args.seconds
        t0 = time.monotonic()
        barrier.wait()
        for th in threads:
            th.join()
        dt = time.monotonic() - t0
        cpu.stop()
        if errors:
            died = [e for e in errors if isinstance(e, ServerDied)]
            raise died[0] if died else errors[0]
        total = sum(counts)
        cfg.record(f"rate_{k}", total / dt)
        cfg.record(f"rate_{k}_count", total)
        cpu.record(cfg, f"rate_{k}")


def cmd_resume_rv(cfg, args):
    c = Client(cfg, timeout=300)
    ensure_namespace(c, args.namespace)
    _, data = c.request("GET", "/api/v1/pods")
    c.close()
    doc = json.loads(data)
    rv = doc["metadata"]["resourceVersion"]
    cfg.record("resume_rv", rv)
    cfg.record("resume_list_items", len(doc["items"]))
    print(rv)


def cmd_resume_watch(cfg, args):
    c = Client(cfg)
    for i in range(args.pods):
        c.request("POST", f"/api/v1/namespaces/{args.namespace}/pods", pod_body(f"after-{i}", i), expect=(201,))
    c.close()
    c = Client(cfg, timeout=30)
    events = {}
    added_ns = 0
    got_410 = 0
    other_errors = []
    t0 = time.monotonic()
    resp = c.request("GET", f"/api/v1/pods?watch=1&resourceVersion={args.rv}&timeoutSeconds={args.watch_seconds}",
                     stream=True, expect=(200, 410))
    if resp.status == 410:
        got_410 = 1
        resp.read()
    else:
        for line in resp:
            line = line.strip()
            if not line:
                continue
            ev = json.loads(line)
            typ = ev.get("type")
            events[typ] = events.get(typ, 0) + 1
            obj = ev.get("object", {})
            if typ == "ERROR":
                if obj.get("code") == 410:
                    got_410 = 1
                else:
                    other_errors.append(obj)
            elif typ == "ADDED" and obj.get("metadata", {}).get("namespace") == args.namespace:
                added_ns += 1
    c.close()
    cfg.record("resume_watch_seconds", time.monotonic() - t0)
    cfg.record("resume_added", added_ns)
    cfg.record("resume_events", sum(events.values()))
    cfg.record("resume_410", got_410)
    cfg.record("resume_other_errors", len(other_errors))
    if other_errors:
        print(f"  watch ERROR events: {other_errors[:3]}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the server's data dir (kubeconfig.yaml, pki/token)")
    p.add_argument("--pid", required=True, type=int, help="the server's process id")
    p.add_argument("--out", help="append `key value` results here")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("wait-ready"); s.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("rss"); s.add_argument("--key", required=True)
    s = sub.add_parser("create"); s.add_argument("--count", type=int, default=10000)
    s.add_argument("--threads", type=int, default=16); s.add_argument("--namespace", default="load")
    s = sub.add_parser("lists"); s.add_argument("--lists", type=int, default=16); s.add_argument("--expect", type=int, default=0)
    s = sub.add_parser("updates"); s.add_argument("--updates", type=int, default=500)
    s.add_argument("--big-bytes", type=int, default=1 << 20); s.add_argument("--namespace", default="big")
    s = sub.add_parser("slow"); s.add_argument("--conns", type=int, default=1000)
    s.add_argument("--header-timeout", type=float, required=True)
    s.add_argument("--grace", type=float, default=1.0, help="seconds allowed past the timeout")
    s.add_argument("--window", type=float, default=40.0, help="seconds from the first open to stop waiting")
    s = sub.add_parser("pages"); s.add_argument("--limit", type=int, default=500); s.add_argument("--reps", type=int, default=3)
    s = sub.add_parser("stalled-watch"); s.add_argument("--count", type=int, default=2000)
    s.add_argument("--kib", type=int, default=64); s.add_argument("--namespace", default="stalled")
    s = sub.add_parser("many-lists"); s.add_argument("--lists", type=int, default=64)
    s = sub.add_parser("idle"); s.add_argument("--conns", type=int, default=2000)
    s.add_argument("--idle-timeout", type=float, required=True)
    s = sub.add_parser("rates"); s.add_argument("--clients", default="1,8,32"); s.add_argument("--seconds", type=float, default=5)
    s = sub.add_parser("resume-rv"); s.add_argument("--namespace", default="resume")
    s = sub.add_parser("resume-watch"); s.add_argument("--rv", required=True); s.add_argument("--pods", type=int, default=5)
    s.add_argument("--namespace", default="resume"); s.add_argument("--watch-seconds", type=int, default=2)
    args = p.parse_args()
    try:
        cfg = Config(args)
        globals()["cmd_" + args.cmd.replace("-", "_")](cfg, args)
    except ServerDied as e:
        print(f"apiserver_load {args.cmd}: SERVER DIED: {e}", file=sys.stderr)
        sys.exit(2)
    except (Failure, OSError, ValueError, KeyError, threading.BrokenBarrierError) as e:
        if not alive(args.pid):
            print(f"apiserver_load {args.cmd}: SERVER DIED ({e!r})", file=sys.stderr)
            sys.exit(2)
        print(f"apiserver_load {args.cmd}: FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
