"""exec and port-forward with the official Python client (PyPI `kubernetes`) against skiff.
Usage: python_stream.py KUBECONFIG POD. Prints what it checked; exits non-zero on a mismatch."""
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream

config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
pod = sys.argv[2]

out = stream(api.connect_get_namespaced_pod_exec, pod, "default",
             command=["sh", "-c", "echo from python; echo to stderr >&2"],
             stderr=True, stdin=False, stdout=True, tty=False)
assert "from python" in out, repr(out)
print("exec ok")

pf = portforward(api.connect_get_namespaced_pod_portforward, pod, "default", ports="80")
sock = pf.socket(80)
sock.setblocking(True)
sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
sock.close()
assert b"hello through port-forward" in data, data[:200]
print("port-forward ok")

# The channel protocols spoken raw, as older or text-only clients do: binary and base64, with
# the error channel as JSON (v4) or as a plain message (before v4).
import base64
import json

from kubernetes.stream.ws_client import ABNF, create_websocket, get_websocket_url

cfg = client.Configuration.get_default_copy()
auth = cfg.get_api_key_with_prefix("authorization")
headers = {"authorization": auth} if auth else {}


def session(path, query, protocol, send=()):
    """Messages of one raw WebSocket session, decoded: {channel: bytes}."""
    url = get_websocket_url(cfg.host + path, query)
    ws = create_websocket(cfg, url, headers={**headers, "sec-websocket-protocol": protocol})
    chosen = {k.lower(): v for k, v in (ws.getheaders() or {}).items()}.get("sec-websocket-protocol")
    assert chosen == protocol, (chosen, protocol)
    b64 = "base64" in protocol
    for channel, data in send:
        if b64:
            ws.send(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            ws.send_binary(bytes([channel]) + data)
    got = {}
    while True:
        opcode, data = ws.recv_data()
        if opcode == ABNF.OPCODE_CLOSE:
            break
        if not data:
            continue
        channel, payload = (data[0] - ord("0"), base64.b64decode(data[1:])) if b64 else (data[0], data[1:])
        got[channel] = got.get(channel, b"") + payload
        if b"port-forward\n" in got.get(0, b""):
            break  # the page came; a port-forward session stays open
    ws.close()
    return got


exec_path = f"/api/v1/namespaces/default/pods/{pod}/exec"

if len(sys.argv) > 3 and sys.argv[3] == "stall":
    # A client that never reads: an endless output, nothing taken; the caller measures the
    # server meanwhile and tells us (a line on stdin) when to close.
    url = get_websocket_url(cfg.host + exec_path, [("command", ["head", "-c", "999999999999", "/dev/zero"]), ("stdout", "true")])
    ws = create_websocket(cfg, url, headers={**headers, "sec-websocket-protocol": "v5.channel.k8s.io"})
    print("STALLED", flush=True)
    sys.stdin.readline()
    ws.close()
    sys.exit(0)

command = [("command", ["sh", "-c", "echo raw; exit 5"]), ("stdout", "true"), ("stderr", "true")]
for protocol in ["v4.base64.channel.k8s.io", "base64.channel.k8s.io", "channel.k8s.io", "v4.channel.k8s.io"]:
    got = session(exec_path, command, protocol)
    assert got.get(1) == b"raw\n", (protocol, got)
    if protocol.startswith("v4"):
        status = json.loads(got[3])
        assert status["details"]["causes"][0]["message"] == "5", (protocol, status)
    else:
        assert got[3] == b"command terminated with non-zero exit code: command exited with 5", (protocol, got)
    print(f"exec over {protocol} ok")

pf_path = f"/api/v1/namespaces/default/pods/{pod}/portforward"
got = session(pf_path, [("ports", "80")], "v4.base64.channel.k8s.io", [(0, b"GET / HTTP/1.0\r\n\r\n")])
assert b"hello through port-forward" in got.get(0, b""), got
print("port-forward over v4.base64.channel.k8s.io ok")
