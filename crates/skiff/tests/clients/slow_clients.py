"""Clients that misbehave at the connection level, for the API server's limits.

usage: slow_clients.py half-sent|bounded PORT
  half-sent: 20 connections that never finish their request headers; prints how many the server
             closed and how long that took.
  bounded:   4 such connections held open, then a fifth (its TLS handshake must wait), then one of
             the four goes (the next one must get through); prints what happened.
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
else:
    held = half_sent(4)
    waiting = connect(2)
    held[0].close()
    served = connect(10)
    print("held" if all(held) else "not-held", "waited" if waiting is None else "not-waited",
          "served" if served else "not-served")
