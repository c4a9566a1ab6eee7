"""The official Python client's dynamic client on custom resources: find the Widget kind by
discovery, create one (defaulted by the schema), list it, watch it change, patch it (merge and
JSON patch), write its status through the subresource, read it through the other version, and
see a schema violation refused with its field path.

usage: dynamic_widgets.py KUBECONFIG
Prints one line per step; the test compares them.
"""
import sys

from kubernetes import config, dynamic, watch
from kubernetes.client import api_client
from kubernetes.dynamic.exceptions import UnprocessibleEntityError

client = dynamic.DynamicClient(api_client.ApiClient(configuration=config.load_kube_config(sys.argv[1])))
widgets = client.resources.get(api_version="example.com/v1", kind="Widget")
print("found", widgets.name, widgets.namespaced, sorted(widgets.short_names))

body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "py"}, "spec": {"size": 3}}
created = widgets.create(body=body, namespace="default")
print("created", created.spec.size, created.spec.color)

listed = widgets.get(namespace="default")
print("listed", [w.metadata.name for w in listed.items if w.metadata.name == "py"])

# Changed after the list: a watch from the list's resourceVersion sees the change.
widgets.patch(body={"spec": {"size": 4}}, name="py", namespace="default", content_type="application/merge-patch+json")
stream = watch.Watch()
seen = []
for event in widgets.watch(namespace="default", resource_version=listed.metadata.resourceVersion, watcher=stream, timeout=20):
    if event["object"].metadata.name != "py":
        continue
    seen.append((event["type"], event["object"].spec.size))
    if event["object"].spec.size == 4:
        stream.stop()
print("watched", seen[-1])

patched = widgets.patch(body=[{"op": "replace", "path": "/spec/color", "value": "red"}], name="py",
                        namespace="default", content_type="application/json-patch+json")
print("json patched", patched.spec.color, patched.metadata.generation)

status = widgets.status.patch(body={"status": {"replicas": 2}}, name="py", namespace="default",
                              content_type="application/merge-patch+json")
print("status", status.status.replicas, status.metadata.generation)

beta = client.resources.get(api_version="example.com/v1beta1", kind="Widget")
print("v1beta1", beta.get(name="py", namespace="default").to_dict()["spec"])

try:
    widgets.create(body={**body, "metadata": {"name": "bad"}, "spec": {"size": 0}}, namespace="default")
    print("created a bad widget")
except UnprocessibleEntityError as e:
    import json
    print("refused", json.loads(e.body)["details"]["causes"][0]["field"])

widgets.delete(name="py", namespace="default")
print("deleted")
