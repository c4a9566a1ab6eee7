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
