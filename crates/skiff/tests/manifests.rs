//! End to end: application manifests as chart renderers and kustomize emit them, with real pods
//! (kubectl 1.32): one multi-document install (ServiceAccount, Role, RoleBinding, ConfigMap,
//! Secret, Service, Deployment, StatefulSet with claims, Ingress, a CRD followed by its custom
//! resource, a Job) converges; `kubectl apply -k` with a kustomization (name prefix, labels, a
//! generated ConfigMap); `kubectl apply --prune -l` removes what left the manifests;
//! `kubectl diff` shows a server-side dry run's differences and nothing when there are none.

mod common;

use common::{Kubectl, Server, eventually, import_busybox};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
/// This file's bridge (`skt53`): no other test binary uses it.
const NET: u8 = 53;

const APP: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: shop}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: shop}
subjects:
- {kind: ServiceAccount, name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-secret}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Service
metadata: {name: shop}
spec:
  selector: {app: shop}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      serviceAccountName: shop
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, "echo $GREETING > /tmp/g && exec sleep 3600"]
        env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: shop-config, key: greeting}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: shop-secret, key: password}}}
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: shop-db}
spec:
  serviceName: shop
  replicas: 1
  selector: {matchLabels: {app: shop-db}}
  template:
    metadata: {labels: {app: shop-db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: busybox:1.36
        command: [sh, -c, "date > /data/started && exec sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 8Mi}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  rules:
  - host: shop.localhost
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: carts.shop.example.com}
spec:
  group: shop.example.com
  scope: Namespaced
  names: {plural: carts, singular: cart, kind: Cart}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              items: {type: integer, default: 0}
---
apiVersion: shop.example.com/v1
kind: Cart
metadata: {name: first}
spec: {}
---
apiVersion: batch/v1
kind: Job
metadata: {name: shop-migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: migrate, image: busybox:1.36, command: [sh, -c, "echo migrated"]}
"#;

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

/// Apply until it succeeds: a custom resource after its definition in the same file may need
/// a second pass, as with upstream (kubectl maps every object before the CRD is established).
fn apply_converges(k: &Kubectl, manifest: &str) -> String {
    let first = k.run_stdin(&["apply", "-f", "-"], manifest);
    if first.code == 0 {
        return first.stdout;
    }
    assert!(first.stderr.contains("ensure CRDs are installed first"), "{}", first.combined());
    k.run_stdin(&["apply", "-f", "-"], manifest).ok()
}

#[test]
fn a_chart_like_install_converges() {
    let server = Server::with_node(NET, |d| import_busybox(d, &[]));
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0));
    apply_converges(&k, APP);
    let rolled = |what: &str| k.run(&["rollout", "status", what, "--timeout=90s"]);
    let deploy = rolled("deployment/shop");
    assert_eq!(deploy.code, 0, "{}", deploy.combined());
    let sts = rolled("statefulset/shop-db");
    assert_eq!(sts.code, 0, "{}\n{}", sts.combined(), k.run(&["get", "pods,pvc", "-o", "wide"]).stdout);
    let job = k.run(&["wait", "--for=condition=complete", "job/shop-migrate", "--timeout=90s"]);
    assert_eq!(job.code, 0, "{}", job.combined());
    assert_eq!(k.jsonpath(&["cart", "first"], "{.spec.items}"), "0");
    assert_eq!(k.jsonpath(&["pvc", "data-shop-db-0"], "{.status.phase}"), "Bound");
    assert_eq!(k.jsonpath(&["ingress", "shop"], "{.spec.rules[0].host}"), "shop.localhost");
    let pod = k.jsonpath(&["pods", "-l", "app=shop"], "{.items[0].metadata.name}");
    let greeting = k.run(&["exec", &pod, "--", "cat", "/tmp/g"]);
    assert_eq!(
        greeting.stdout.trim(),
        "hello",
        "{}\n{}",
        greeting.combined(),
        k.run(&["get", "pods", "-o", "wide"]).stdout
    );
    // Applied again: unchanged, but for the two kubectl always patches, upstream too: a Secret's
    // stringData (never in the live object) and a StatefulSet's claim templates (an atomic list
    // the server defaults).
    let again = k.run_stdin(&["apply", "-f", "-"], APP).ok();
    let always = ["secret/shop-secret configured", "statefulset.apps/shop-db configured"];
    assert!(again.lines().all(|l| l.ends_with(" unchanged") || always.contains(&l)), "{again}");

    // kubectl diff: nothing to show (exit 0), then a change (exit 1 with the diff).
    let same = k.run_stdin(&["diff", "-f", "-"], APP);
    assert_eq!(same.code, 0, "{}", same.combined());
    let changed = APP.replace("data: {greeting: hello}", "data: {greeting: bonjour}");
    let diff = k.run_stdin(&["diff", "-f", "-"], &changed);
    assert_eq!(diff.code, 1, "{}", diff.combined());
    assert!(
        diff.stdout.contains("-  greeting: hello") && diff.stdout.contains("+  greeting: bonjour"),
        "{}",
        diff.stdout
    );
    assert_eq!(k.jsonpath(&["configmap", "shop-config"], "{.data.greeting}"), "hello", "diff changed nothing");
}

#[test]
fn kustomize_and_prune() {
    let server = Server::start();
    let k = server.kubectl("1.32");
    assert!(eventually(WAIT, || k.run(&["get", "serviceaccount", "default"]).code == 0));
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "kustomization.yaml",
        "namePrefix: prod-\nlabels:\n- pairs: {team: shop}\n  includeSelectors: true\nresources: [service.yaml, deployment.yaml]\nconfigMapGenerator:\n- name: settings\n  literals: [mode=fast]\n",
    );
    write(
        dir.path(),
        "service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    write(
        dir.path(),
        "deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1.36\n        envFrom: [{configMapRef: {name: settings}}]\n",
    );
    let out = k.run(&["apply", "-k", dir.path().to_str().expect("utf8")]).ok();
    assert!(out.contains("service/prod-web created") && out.contains("deployment.apps/prod-web created"), "{out}");
    let generated = k.jsonpath(&["configmaps", "-l", "team=shop"], "{.items[0].metadata.name}");
    assert!(generated.starts_with("prod-settings-"), "{generated}");
    assert_eq!(
        k.jsonpath(&["deployment", "prod-web"], "{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}"),
        generated,
        "the reference follows the generated name"
    );
    assert_eq!(k.jsonpath(&["deployment", "prod-web"], "{.spec.selector.matchLabels.team}"), "shop");

    // Prune: objects with the label that left the manifests are deleted, others stay.
    let manifests = tempfile::tempdir().expect("tempdir");
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: pruned}}\ndata: {{a: b}}\n"
        )
    };
    write(manifests.path(), "a.yaml", &cm("keep"));
    write(manifests.path(), "b.yaml", &cm("goes"));
    let path = manifests.path().to_str().expect("utf8");
    k.run(&["apply", "-f", path, "--prune", "-l", "app=pruned"]).ok();
    std::fs::remove_file(manifests.path().join("b.yaml")).expect("rm");
    let pruned = k.run(&["apply", "-f", path, "--prune", "-l", "app=pruned"]).ok();
    assert!(pruned.contains("configmap/goes pruned"), "{pruned}");
    assert!(k.run(&["get", "configmap", "goes"]).code != 0);
    k.run(&["get", "configmap", "keep"]).ok();
    k.run(&["get", "service", "prod-web"]).ok();
}
