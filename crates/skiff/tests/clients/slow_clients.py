"""Clients that misbehave at the connection level, for the API server's limits.

usage: slow_clients.py half-sent|bounded|inflight|early-413|idle PORT [TOKEN]
  half-sent: 20 connections that never finish their request headers; prints how many the server
             closed and how long that took.
  bounded:   4 such connections held open, then a fifth (its TLS handshake must wait), then one of
             the four goes (the next one must get through); prints what happened.
  inflight:  (server with one mutating seat) a create whose body never finishes holds the seat;
             a second create gets 429 with Retry-After, a read is served, and once the first
             goes a create succeeds; prints the status codes and Retry-After.
  early-413: a create announcing a 100 MB body, of which nothing is sent: prints the status and
             how long the answer took.
  idle:      one request, then nothing: prints whether the server closed the connection and when.
"""
import socket
import ssl
import sys
import time

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
port = int(sys.argv[2])


def connect(timeout):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    try:
        return ctx.wrap_socket(s)
    except (socket.timeout, ssl.SSLError, OSError):
        s.close()
        return None


def half_sent(n):
    conns = [connect(10) for _ in range(n)]
    for c in conns:
        c.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n")
    return conns


if sys.argv[1] == "half-sent":
    conns = half_sent(20)
    start = time.time()
    closed = 0
    for c in conns:
        c.settimeout(10)
        try:
            closed += c.recv(1024) == b""
        except (ConnectionResetError, ssl.SSLError):
            closed += 1
        except socket.timeout:
            pass
    print(closed, round(time.time() - start, 1))
elif sys.argv[1] in ("inflight", "early-413", "idle"):
    token = sys.argv[3]
    pod = b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s"},"spec":{"containers":[{"name":"c","image":"x"}]}}'

    def request(conn, method, path, body=b"", length=None, extra=""):
        head = "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n" \
               "Content-Length: %d\r\n%s\r\n" % (method, path, token, len(body) if length is None else length, extra)
        conn.sendall(head.encode() + body)

    def response(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode()
        headers = dict((k.lower(), v) for k, v in (l.split(": ", 1) for l in head.split("\r\n")[1:] if ": " in l))
        return int(head.split(" ")[1]), headers

    pods = "/api/v1/namespaces/default/pods"
    if sys.argv[1] == "inflight":
        holder = connect(10)
        body = pod % b"held"
        request(holder, "POST", pods, body[:10], length=len(body))
        time.sleep(0.5)
        second = connect(10)
        start = time.time()
        request(second, "POST", pods, pod % b"second")
        code, headers = response(second)
        waited = time.time() - start
        reader = connect(10)
        request(reader, "GET", "/api/v1/namespaces")
        read_code, _ = response(reader)
        holder.close()
        time.sleep(0.5)
        third = connect(10)
        request(third, "POST", pods, pod % b"third")
        third_code, _ = response(third)
        print(code, headers.get("retry-after", "-"), "waited" if waited >= 1.5 else "not-waited", read_code, third_code)
    elif sys.argv[1] == "early-413":
        # 100 MB announced and nothing sent; then 4 MB announced by a client waiting for 100 Continue.
        answers = []
        for length, extra in ((100_000_000, ""), (4_000_000, "Expect: 100-continue\r\n")):
            conn = connect(10)
            start = time.time()
            request(conn, "POST", pods, b"", length=length, extra=extra)
            code, _ = response(conn)
            answers += [str(code), str(round(time.time() - start, 1))]
        print(" ".join(answers))
    else:
        conn = connect(10)
        request(conn, "GET", "/api/v1/namespaces")
        code, _ = response(conn)
        conn.settimeout(15)
        start = time.time()
        closed = False
        try:
            while conn.recv(65536):
                pass
            closed = True
        except (ConnectionResetError, ssl.SSLError):
            closed = True
        except socket.timeout:
            pass
        print(code, "closed" if closed else "open", round(time.time() - start))
else:
    held = half_sent(4)
    waiting = connect(2)
    held[0].close()
    served = connect(10)
    print("held" if all(held) else "not-held", "waited" if waiting is None else "not-waited",
          "served" if served else "not-served")
