//! The registry's rules over the in-memory store: optimistic concurrency, patch retries under
//! contention, graceful deletion, finalizers, dry-run and server-side apply.

use super::*;
use skiff_core::kinds::Part;
use skiff_store::MemoryStore;

fn kind(plural: &str) -> &'static dyn Kind {
    kinds::all().iter().copied().find(|k| k.info().plural == plural).expect("kind")
}

fn opts(manager: &str) -> WriteOptions {
    WriteOptions {
        dry_run: false,
        field_manager: manager.into(),
        field_validation: FieldValidation::Strict,
        force: false,
        user: None,
    }
}

async fn registry() -> Registry {
    let reg = Registry::new(Arc::new(MemoryStore::new()));
    reg.ensure_namespace("default").await.expect("default namespace");
    // What the controller manager makes: pods run as it.
    let account = json!({"metadata": {"name": "default"}});
    reg.create(kinds::SERVICE_ACCOUNTS, "default", account, &opts("test")).await.expect("default account");
    reg
}

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}})
}

fn at<'a>(plural: &str, name: &'a str) -> ObjectRef<'a> {
    ObjectRef { kind: kind(plural), namespace: "default", name }
}

#[tokio::test]
async fn creates_are_unique_and_updates_are_conditional_on_the_resource_version() {
    let reg = registry().await;
    let created = reg.create(kind("secrets"), "default", secret("s"), &opts("test")).await.expect("create");
    let again = reg.create(kind("secrets"), "default", secret("s"), &opts("test")).await;
    assert_eq!(again.map_err(|e| e.code()).err(), Some(409), "AlreadyExists");

    // An update carrying the current resourceVersion wins; a stale one is a 409.
    let mut next = created.clone();
    next["data"]["k"] = json!("dw==");
    let updated = reg.update(at("secrets", "s"), next.clone(), Part::Main, &opts("test")).await.expect("update");
    assert_ne!(meta::resource_version(&updated), meta::resource_version(&created));
    let stale = reg.update(at("secrets", "s"), next, Part::Main, &opts("test")).await;
    assert_eq!(stale.map_err(|e| e.code()).err(), Some(409), "stale resourceVersion");
    // Without one, the update is unconditional.
    let mut blind = secret("s");
    blind["data"]["k"] = json!("eA==");
    let blind = reg.update(at("secrets", "s"), blind, Part::Main, &opts("test")).await.expect("blind update");
    assert_eq!(blind["data"]["k"], "eA==");
    // A different uid is a precondition that fails.
    let mut other = blind.clone();
    other["metadata"]["uid"] = json!("not-the-same");
    let wrong = reg.update(at("secrets", "s"), other, Part::Main, &opts("test")).await;
    assert_eq!(wrong.map_err(|e| e.code()).err(), Some(409), "uid precondition");
}

#[tokio::test]
async fn concurrent_patches_all_land_by_retrying() {
    let reg = registry().await;
    reg.create(kind("secrets"), "default", secret("busy"), &opts("test")).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"metadata": {"labels": {format!("l{i}"): "x"}}});
            reg.patch(at("secrets", "busy"), PatchType::Merge, &body, Part::Main, &opts("test")).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("patch");
    }
    let obj = reg.get(at("secrets", "busy")).await.expect("get");
    assert_eq!(obj["metadata"]["labels"].as_object().map(|l| l.len()), Some(24), "{obj}");
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let reg = registry().await;
    let dry = WriteOptions { dry_run: true, ..opts("test") };
    let shown = reg.create(kind("secrets"), "default", secret("ghost"), &dry).await.expect("dry create");
    assert_eq!(shown["metadata"]["name"], "ghost");
    assert_eq!(reg.get(at("secrets", "ghost")).await.map_err(|e| e.code()).err(), Some(404));

    reg.create(kind("secrets"), "default", secret("kept"), &opts("test")).await.expect("create");
    let deleted = reg.delete(at("secrets", "kept"), &DeleteOptions::default(), true).await.expect("dry delete");
    assert!(matches!(deleted, Deleted::Gone(_)));
    reg.get(at("secrets", "kept")).await.expect("still there");
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_they_are_removed() {
    let reg = registry().await;
    let mut s = secret("held");
    s["metadata"]["finalizers"] = json!(["example.com/hold"]);
    reg.create(kind("secrets"), "default", s, &opts("test")).await.expect("create");
    let pending = reg.delete(at("secrets", "held"), &DeleteOptions::default(), false).await.expect("delete");
    let Deleted::Pending(obj) = pending else { panic!("a finalizer holds it") };
    assert!(meta::is_deleting(&obj));
    // Removing the last finalizer lets it go.
    let body = json!({"metadata": {"finalizers": null}});
    reg.patch(at("secrets", "held"), PatchType::Merge, &body, Part::Main, &opts("test")).await.expect("patch");
    assert_eq!(reg.get(at("secrets", "held")).await.map_err(|e| e.code()).err(), Some(404));
}

#[tokio::test]
async fn pods_on_a_node_are_deleted_gracefully() {
    let reg = registry().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
    reg.create(kind("pods"), "default", pod, &opts("test")).await.expect("create");
    let pending = reg.delete(at("pods", "web"), &DeleteOptions::default(), false).await.expect("delete");
    let Deleted::Pending(obj) = pending else { panic!("the node agent stops it first") };
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 30);
    // The agent's delete with grace 0 ends it.
    let now = DeleteOptions { grace_period_seconds: Some(0), ..Default::default() };
    let gone = reg.delete(at("pods", "web"), &now, false).await.expect("delete now");
    assert!(matches!(gone, Deleted::Gone(_)));
    // An unscheduled pod goes at once.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    reg.create(kind("pods"), "default", pod, &opts("test")).await.expect("create");
    let gone = reg.delete(at("pods", "idle"), &DeleteOptions::default(), false).await.expect("delete");
    assert!(matches!(gone, Deleted::Gone(_)));
}

#[tokio::test]
async fn server_side_apply_creates_tracks_managers_and_reports_conflicts() {
    let reg = registry().await;
    let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cfg", "labels": {"team": "a"}}});
    let first = reg.patch(at("secrets", "cfg"), PatchType::Apply, &applied, Part::Main, &opts("alice")).await;
    let first = first.expect("apply creates");
    assert!(first.created);
    assert!(
        first.object["metadata"]["managedFields"].as_array().is_some_and(|m| m.iter().any(|f| f["manager"] == "alice")),
        "{}",
        first.object
    );
    // Another manager setting the same field differently: a conflict, unless forced.
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cfg", "labels": {"team": "b"}}});
    let conflict = reg.patch(at("secrets", "cfg"), PatchType::Apply, &theirs, Part::Main, &opts("bob")).await;
    assert_eq!(conflict.map_err(|e| e.code()).err(), Some(409), "apply conflict");
    let forced = WriteOptions { force: true, ..opts("bob") };
    let won = reg.patch(at("secrets", "cfg"), PatchType::Apply, &theirs, Part::Main, &forced).await.expect("forced");
    assert!(!won.created);
    assert_eq!(won.object["metadata"]["labels"]["team"], "b");
}

#[tokio::test]
async fn a_named_group_kind_is_kept_under_its_group_and_named_with_it() {
    let reg = registry().await;
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    let (obj, _) = decode_body(kind("leases"), &lease, &[], FieldValidation::Strict).expect("decode");
    let created = reg.create(kind("leases"), "default", obj, &opts("test")).await.expect("create");
    assert_eq!(created["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(created["metadata"]["managedFields"][0]["apiVersion"], "coordination.k8s.io/v1");
    let stored = reg.store().get("/registry/coordination.k8s.io/leases/default/l").await.expect("read");
    assert!(stored.is_some(), "kept under the group");

    let missing = reg.get(at("leases", "nope")).await.expect_err("missing");
    assert_eq!(missing.to_string(), "leases.coordination.k8s.io \"nope\" not found");
    assert_eq!(missing.to_status()["details"]["group"], "coordination.k8s.io");
    let again = reg.create(kind("leases"), "default", created.clone(), &opts("test")).await.expect_err("exists");
    assert_eq!(again.to_string(), "leases.coordination.k8s.io \"l\" already exists");

    let mut bad = created;
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    let invalid = reg.update(at("leases", "l"), bad, Part::Main, &opts("test")).await.expect_err("invalid");
    assert_eq!(
        invalid.to_string(),
        "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );

    let core = json!({"apiVersion": "v1", "kind": "Lease", "metadata": {"name": "l"}});
    let wrong = decode_body(kind("leases"), &core, &[], FieldValidation::Strict).expect_err("wrong version");
    assert_eq!(
        wrong.to_string(),
        "the API version in the data (v1) does not match the expected API version (coordination.k8s.io/v1)"
    );
}

#[tokio::test]
async fn propagation_policies_set_the_garbage_collectors_finalizers() {
    let reg = registry().await;
    let delete = |policy: Option<&str>, orphan: Option<bool>| DeleteOptions {
        propagation_policy: policy.map(String::from),
        orphan_dependents: orphan,
        ..Default::default()
    };
    reg.create(kind("secrets"), "default", secret("owner"), &opts("test")).await.expect("create");
    let Deleted::Pending(obj) =
        reg.delete(at("secrets", "owner"), &delete(Some("Foreground"), None), false).await.expect("delete")
    else {
        panic!("foreground deletion waits for the dependents")
    };
    assert_eq!(meta::finalizers(&obj), ["foregroundDeletion"]);
    // Asked again to orphan instead: the finalizer changes, the deletion time stays.
    let Deleted::Pending(again) =
        reg.delete(at("secrets", "owner"), &delete(None, Some(true)), false).await.expect("delete")
    else {
        panic!("orphaning waits too")
    };
    assert_eq!(meta::finalizers(&again), ["orphan"]);
    assert_eq!(again["metadata"]["deletionTimestamp"], obj["metadata"]["deletionTimestamp"]);
    // Background drops both: nothing holds it any more, and it goes.
    let gone = reg.delete(at("secrets", "owner"), &delete(Some("Background"), None), false).await.expect("delete");
    assert!(matches!(gone, Deleted::Gone(_)));

    reg.create(kind("secrets"), "default", secret("plain"), &opts("test")).await.expect("create");
    let both = reg.delete(at("secrets", "plain"), &delete(Some("Orphan"), Some(true)), false).await;
    let err = both.err().expect("both set");
    assert_eq!(
        err.to_string(),
        "DeleteOptions \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
    );
    let bogus = reg.delete(at("secrets", "plain"), &delete(Some("Later"), None), false).await;
    assert_eq!(bogus.map(|_| ()).map_err(|e| e.code()), Err(422));
    assert!(matches!(
        reg.delete(at("secrets", "plain"), &delete(Some("Background"), None), false).await,
        Ok(Deleted::Gone(_))
    ));
}

#[tokio::test]
async fn a_patch_without_a_resource_version_is_retried_over_concurrent_writes() {
    let reg = registry().await;
    reg.create(kind("secrets"), "default", secret("busy"), &opts("test")).await.expect("create");
    // A writer racing the patch: every patch attempt must see it and still land.
    let writer = {
        let reg = reg.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let body = json!({"metadata": {"labels": {"n": i.to_string()}}});
                let _ = reg.patch(at("secrets", "busy"), PatchType::Merge, &body, Part::Main, &opts("w")).await;
            }
        })
    };
    for i in 0..50 {
        let body = json!({"metadata": {"annotations": {"m": i.to_string()}}});
        reg.patch(at("secrets", "busy"), PatchType::Strategic, &body, Part::Main, &opts("p")).await.expect("patched");
    }
    writer.await.expect("writer");
    // One that names an old resourceVersion is refused, not retried.
    let stale = json!({"metadata": {"resourceVersion": "1", "annotations": {"m": "x"}}});
    let err = reg.patch(at("secrets", "busy"), PatchType::Merge, &stale, Part::Main, &opts("p")).await;
    assert_eq!(err.map(|_| ()).map_err(|e| e.code()), Err(409));
    let json_rv = json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}]);
    assert_eq!(precondition(PatchType::Json, &json_rv), "1");
}

/// RBAC bindings through the registry: defaulted on create, a roleRef that cannot change on
/// update (upstream's message, the error listed once), subjects that can.
#[tokio::test]
async fn role_bindings_keep_their_role_ref() {
    let reg = registry().await;
    let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
        "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "jane"}]});
    let created = reg.create(kind("rolebindings"), "default", rb, &opts("test")).await.expect("create");
    assert_eq!(created["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(created["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    let more = json!({"subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"}]});
    let patched = reg.patch(at("rolebindings", "rb"), PatchType::Merge, &more, Part::Main, &opts("test")).await;
    assert_eq!(patched.expect("subjects may change").object["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
    let edit = json!({"roleRef": {"name": "edit"}});
    let err = reg.patch(at("rolebindings", "rb"), PatchType::Merge, &edit, Part::Main, &opts("test")).await;
    let err = err.expect_err("roleRef is immutable");
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "RoleBinding.rbac.authorization.k8s.io \"rb\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
    );
}
