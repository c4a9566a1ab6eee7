"""An informer-style client on the official Python client: list once, then watch from the list's
resourceVersion; when the connection drops (the server restarts), watch again from the last
resourceVersion seen, listing again only if the server answers 410 (history gone).

usage: informer.py KUBECONFIG NAMESPACE SECONDS NAME[,NAME...]
Prints `LISTED` once its first list is done (a test waits for it before restarting the server),
runs until every NAME was seen ADDED (or SECONDS pass), then prints `LISTS <n>` and `SEEN <names>`.
"""
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

kubeconfig, namespace, seconds, expected = sys.argv[1], sys.argv[2], float(sys.argv[3]), set(sys.argv[4].split(","))
config.load_kube_config(kubeconfig)
v1 = client.CoreV1Api()
lists = 0
seen = set()


def relist():
    global lists
    pods = v1.list_namespaced_pod(namespace)
    lists += 1
    seen.update(p.metadata.name for p in pods.items)
    return pods.metadata.resource_version


rv = relist()
print("LISTED", flush=True)
deadline = time.time() + seconds
while time.time() < deadline and not expected <= seen:
    try:
        stream = watch.Watch().stream(
            v1.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=2, allow_watch_bookmarks=True
        )
        for event in stream:
            if event["type"] == "ERROR":
                raise ApiException(status=event["raw_object"].get("code", 0))
            rv = event["object"].metadata.resource_version
            if event["type"] == "ADDED":
                seen.add(event["object"].metadata.name)
    except ApiException as e:
        if e.status == 410:
            rv = relist()
        else:
            time.sleep(0.3)
    except Exception:
        # Connection refused or reset while the server restarts: try again from the same place.
        time.sleep(0.3)
print("LISTS", lists)
print("SEEN", ",".join(sorted(seen)))
