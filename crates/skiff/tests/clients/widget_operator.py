"""A small operator written with kopf: each Widget gets a Deployment of `spec.size` replicas,
owned by the Widget (so deleting the Widget collects it), and the Widget's status says which.

usage: kopf run --standalone --namespace default widget_operator.py  (KUBECONFIG in the environment)
"""
import kopf
import kubernetes


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    # No peering objects: the operator runs alone.
    settings.peering.standalone = True
    settings.posting.enabled = False


@kopf.on.create("example.com", "v1", "widgets")
def create_fn(spec, name, namespace, **_):
    labels = {"widget": name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-app", "labels": labels},
        "spec": {
            "replicas": spec.get("size", 1),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
            },
        },
    }
    kopf.adopt(deployment)
    kubernetes.config.load_kube_config()
    kubernetes.client.AppsV1Api().create_namespaced_deployment(namespace, deployment)
    return {"deployment": f"{name}-app"}


@kopf.on.update("example.com", "v1", "widgets", field="spec.size")
def resize_fn(new, name, namespace, **_):
    kubernetes.config.load_kube_config()
    kubernetes.client.AppsV1Api().patch_namespaced_deployment_scale(
        f"{name}-app", namespace, {"spec": {"replicas": new}})
    return {"replicas": new}
