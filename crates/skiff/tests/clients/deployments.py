"""The official Python client on apps/v1: create a Deployment, watch the controller report its
ReplicaSet's pods, scale it through the scale subresource, and read the ReplicaSet it made.

usage: deployments.py KUBECONFIG
Prints one line per step; the test compares them.
"""
import sys

from kubernetes import client, config, watch

config.load_kube_config(sys.argv[1])
apps = client.AppsV1Api()
labels = {"app": "py-web"}
body = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-web"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels=labels),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels),
            spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
        ),
    ),
)
created = apps.create_namespaced_deployment("default", body)
print("created", created.spec.strategy.type, created.spec.strategy.rolling_update.max_surge)
w = watch.Watch()
for event in w.stream(apps.list_namespaced_deployment, "default", field_selector="metadata.name=py-web", timeout_seconds=30):
    status = event["object"].status
    if status and status.updated_replicas == 2 and status.replicas == 2:
        print("watched", event["type"], status.updated_replicas)
        w.stop()
scale = apps.patch_namespaced_deployment_scale("py-web", "default", {"spec": {"replicas": 3}})
print("scaled", scale.spec.replicas, scale.status.selector)
print("read scale", apps.read_namespaced_deployment_scale("py-web", "default").spec.replicas)
sets = apps.list_namespaced_replica_set("default", label_selector="app=py-web").items
print("replicasets", len(sets), sets[0].metadata.owner_references[0].kind, sets[0].metadata.annotations["deployment.kubernetes.io/revision"])
apps.delete_namespaced_deployment("py-web", "default")
print("deleted")
