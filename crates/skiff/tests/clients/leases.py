"""The official Python client's typed API for a named group (coordination.k8s.io/v1): create, read,
list, watch, replace, patch and delete a Lease, and its errors as ApiException with a Status.

usage: leases.py KUBECONFIG
Prints one line per step; the test compares them.
"""
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(sys.argv[1])
api = client.CoordinationV1Api()
body = client.V1Lease(
    metadata=client.V1ObjectMeta(name="py-lease"),
    spec=client.V1LeaseSpec(holder_identity="python", lease_duration_seconds=15),
)
created = api.create_namespaced_lease("default", body)
print("created", created.api_version, created.spec.holder_identity)
print("read", api.read_namespaced_lease("py-lease", "default").spec.lease_duration_seconds)
listed = api.list_namespaced_lease("default")
print("listed", [l.metadata.name for l in listed.items])
created.spec.holder_identity = "python-2"
print("replaced", api.replace_namespaced_lease("py-lease", "default", created).spec.holder_identity)
patched = api.patch_namespaced_lease("py-lease", "default", {"spec": {"leaseTransitions": 1}})
print("patched", patched.spec.lease_transitions)
w = watch.Watch()
for event in w.stream(api.list_namespaced_lease, "default", resource_version=listed.metadata.resource_version,
                      timeout_seconds=5):
    print("watched", event["type"], event["object"].spec.holder_identity)
    w.stop()
api.delete_namespaced_lease("py-lease", "default")
try:
    api.read_namespaced_lease("py-lease", "default")
except ApiException as e:
    print("gone", e.status, e.reason)
