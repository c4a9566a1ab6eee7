//! Round trips with k8s-pb's prost types as the independent encoder: an object encoded by prost
//! decodes to the JSON written here by hand, which k8s-openapi's typed struct takes unchanged.

use super::*;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

fn s(v: &str) -> Option<String> {
    Some(v.into())
}

fn q(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn map<V: Clone>(entries: &[(&str, V)]) -> std::collections::BTreeMap<String, V> {
    entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn body(kind: &str, object: &impl Message) -> Vec<u8> {
    body_in("v1", kind, object)
}

fn body_in(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
        raw: Some(object.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    [MAGIC.to_vec(), unknown.encode_to_vec()].concat()
}

/// Decodes to `want`, which is also k8s-openapi's canonical JSON of the object.
fn check<T: DeserializeOwned + Serialize>(kind: &str, object: &impl Message, want: Value) {
    let got = decode(&body(kind, object)).expect("decode");
    assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");
    let typed: T = serde_json::from_value(want.clone()).expect("k8s-openapi takes it");
    assert_eq!(serde_json::to_value(typed).expect("encode"), want, "canonical");
}

fn time(seconds: i64) -> Option<meta::Time> {
    Some(meta::Time { seconds: Some(seconds), nanos: Some(0) })
}

fn rich_pod() -> pb::Pod {
    let secret_env = pb::EnvVarSource {
        secret_key_ref: Some(pb::SecretKeySelector {
            local_object_reference: Some(pb::LocalObjectReference { name: s("creds") }),
            key: s("password"),
            optional: Some(false),
        }),
        ..Default::default()
    };
    let probe = |handler: pb::ProbeHandler| pb::Probe {
        handler: Some(handler),
        initial_delay_seconds: Some(0),
        period_seconds: Some(10),
        ..Default::default()
    };
    let container = pb::Container {
        name: s("web"),
        image: s("busybox:1.36"),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["httpd -f".into()],
        working_dir: s(""),
        ports: vec![pb::ContainerPort {
            name: s("http"),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        env: vec![
            pb::EnvVar { name: s("MODE"), value: s("prod"), value_from: None },
            pb::EnvVar { name: s("PASSWORD"), value: s(""), value_from: Some(secret_env) },
        ],
        resources: Some(pb::ResourceRequirements {
            limits: map(&[("cpu", q("500m"))]),
            requests: map(&[("memory", q("64Mi"))]),
            ..Default::default()
        }),
        liveness_probe: Some(probe(pb::ProbeHandler {
            http_get: Some(pb::HttpGetAction {
                path: s("/"),
                port: Some(IntOrString { r#type: Some(0), int_val: Some(80), str_val: s("") }),
                scheme: s("HTTP"),
                ..Default::default()
            }),
            ..Default::default()
        })),
        readiness_probe: Some(probe(pb::ProbeHandler {
            tcp_socket: Some(pb::TcpSocketAction {
                port: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("http") }),
                host: s(""),
            }),
            ..Default::default()
        })),
        security_context: Some(pb::SecurityContext {
            run_as_user: Some(0),
            allow_privilege_escalation: Some(false),
            capabilities: Some(pb::Capabilities { add: vec![], drop: vec!["ALL".into()] }),
            ..Default::default()
        }),
        stdin: Some(false),
        ..Default::default()
    };
    let volumes = vec![
        pb::Volume {
            name: s("scratch"),
            volume_source: Some(pb::VolumeSource {
                empty_dir: Some(pb::EmptyDirVolumeSource { medium: s(""), size_limit: Some(q("1Gi")) }),
                ..Default::default()
            }),
        },
        pb::Volume {
            name: s("creds"),
            volume_source: Some(pb::VolumeSource {
                secret: Some(pb::SecretVolumeSource {
                    secret_name: s("creds"),
                    items: vec![pb::KeyToPath { key: s("password"), path: s("pw"), mode: Some(0o400) }],
                    default_mode: Some(420),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
    ];
    pb::Pod {
        metadata: Some(meta::ObjectMeta {
            name: s("web"),
            generate_name: s(""),
            namespace: s("default"),
            labels: map(&[("app", "web".to_string())]),
            annotations: map(&[("note", String::new())]),
            creation_timestamp: time(1_700_000_000),
            deletion_timestamp: None,
            owner_references: vec![meta::OwnerReference {
                api_version: s("v1"),
                kind: s("Node"),
                name: s("n1"),
                uid: s("u-1"),
                controller: Some(true),
                block_owner_deletion: None,
            }],
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: time(1_700_000_001),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 { raw: Some(br#"{"f:metadata":{"f:labels":{}}}"#.to_vec()) }),
                subresource: s(""),
            }],
            ..Default::default()
        }),
        spec: Some(pb::PodSpec {
            volumes,
            containers: vec![container],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(0),
            node_selector: map(&[("disk", "ssd".to_string())]),
            service_account_name: s(""),
            enable_service_links: Some(false),
            security_context: Some(pb::PodSecurityContext { supplemental_groups: vec![1, 2], ..Default::default() }),
            tolerations: vec![pb::Toleration {
                key: s("k"),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(pb::PodStatus::default()),
    }
}

fn rich_pod_json() -> Value {
    let probe = |handler: (&str, Value)| {
        let mut p = json!({"initialDelaySeconds": 0, "periodSeconds": 10});
        p[handler.0] = handler.1;
        p
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {"note": ""},
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u-1", "controller": true}],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": "2023-11-14T22:13:21Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}
            }]
        },
        "spec": {
            "volumes": [
                {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "creds", "secret": {"secretName": "creds", "items": [{"key": "password", "path": "pw", "mode": 256}], "defaultMode": 420}}
            ],
            "containers": [{
                "name": "web",
                "image": "busybox:1.36",
                "command": ["sh", "-c"],
                "args": ["httpd -f"],
                "ports": [{"name": "http", "hostPort": 0, "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password", "optional": false}}}
                ],
                "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                "livenessProbe": probe(("httpGet", json!({"path": "/", "port": 80, "scheme": "HTTP"}))),
                "readinessProbe": probe(("tcpSocket", json!({"port": "http"}))),
                "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "stdin": false
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"disk": "ssd"},
            "enableServiceLinks": false,
            "securityContext": {"supplementalGroups": [1, 2]},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {}
    })
}

#[test]
fn pod_round_trips_with_inline_structs_quantities_and_times() {
    check::<k8s_openapi::api::core::v1::Pod>("Pod", &rich_pod(), rich_pod_json());
}

#[test]
fn secret_bytes_become_base64() {
    let secret = pb::Secret {
        metadata: Some(meta::ObjectMeta { name: s("regcred"), namespace: s("default"), ..Default::default() }),
        data: map(&[("bin", vec![0u8, 0xff, b'a']), (".dockerconfigjson", br#"{"auths":{}}"#.to_vec())]),
        string_data: map(&[("user", "me".to_string())]),
        r#type: s("kubernetes.io/dockerconfigjson"),
        immutable: Some(true),
    };
    let want = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "default"},
        "data": {".dockerconfigjson": "eyJhdXRocyI6e319", "bin": "AP9h"},
        "stringData": {"user": "me"},
        "type": "kubernetes.io/dockerconfigjson",
        "immutable": true
    });
    check::<k8s_openapi::api::core::v1::Secret>("Secret", &secret, want);
}

#[test]
fn event_micro_times_keep_microseconds() {
    let event = pb::Event {
        metadata: Some(meta::ObjectMeta { name: s("web.1"), namespace: s("default"), ..Default::default() }),
        involved_object: Some(pb::ObjectReference { kind: s("Pod"), name: s("web"), ..Default::default() }),
        reason: s("Pulled"),
        message: s("ok"),
        source: Some(pb::EventSource { component: s("kubelet"), host: s("n1") }),
        first_timestamp: time(1_700_000_000),
        last_timestamp: Some(meta::Time::default()),
        count: Some(2),
        r#type: s("Normal"),
        event_time: Some(meta::MicroTime { seconds: Some(1_700_000_000), nanos: Some(123_456_789) }),
        series: Some(pb::EventSeries {
            count: Some(3),
            last_observed_time: Some(meta::MicroTime { seconds: Some(1_700_000_002), nanos: Some(0) }),
        }),
        reporting_component: s("kubelet"),
        ..Default::default()
    };
    let want = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web"},
        "reason": "Pulled", "message": "ok",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2023-11-14T22:13:20Z",
        "count": 2, "type": "Normal",
        "eventTime": "2023-11-14T22:13:20.123456Z",
        "series": {"count": 3, "lastObservedTime": "2023-11-14T22:13:22.000000Z"},
        "reportingComponent": "kubelet"
    });
    check::<k8s_openapi::api::core::v1::Event>("Event", &event, want);
}

#[test]
fn node_status_maps_of_quantities() {
    let node = pb::Node {
        metadata: Some(meta::ObjectMeta { name: s("n1"), ..Default::default() }),
        spec: Some(pb::NodeSpec {
            pod_cidr: s("10.0.0.0/24"),
            unschedulable: Some(false),
            taints: vec![pb::Taint { key: s("k"), value: s(""), effect: s("NoSchedule"), time_added: time(0) }],
            ..Default::default()
        }),
        status: Some(pb::NodeStatus {
            capacity: map(&[("cpu", q("2")), ("memory", q("24Gi"))]),
            allocatable: map(&[("pods", q("110"))]),
            conditions: vec![pb::NodeCondition {
                r#type: s("Ready"),
                status: s("True"),
                last_heartbeat_time: time(1_700_000_000),
                last_transition_time: time(1_700_000_000),
                ..Default::default()
            }],
            addresses: vec![pb::NodeAddress { r#type: s("InternalIP"), address: s("127.0.0.1") }],
            daemon_endpoints: Some(pb::NodeDaemonEndpoints {
                kubelet_endpoint: Some(pb::DaemonEndpoint { port: Some(10250) }),
            }),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.0.0.0/24", "unschedulable": false,
            "taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": "1970-01-01T00:00:00Z"}]},
        "status": {
            "capacity": {"cpu": "2", "memory": "24Gi"},
            "allocatable": {"pods": "110"},
            "conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": "2023-11-14T22:13:20Z", "lastTransitionTime": "2023-11-14T22:13:20Z"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }
    });
    check::<k8s_openapi::api::core::v1::Node>("Node", &node, want);
}

/// What Go writes for `kubectl create namespace team-a`: every non-pointer field, set or not.
#[test]
fn namespace_as_go_writes_it() {
    let ns = pb::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: s("team-a"),
            generate_name: s(""),
            namespace: s(""),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(pb::NamespaceSpec::default()),
        status: Some(pb::NamespaceStatus { phase: s(""), conditions: vec![] }),
    };
    let want = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "generation": 0},
        "spec": {}, "status": {}
    });
    check::<k8s_openapi::api::core::v1::Namespace>("Namespace", &ns, want);
}

#[test]
fn service_ports_take_int_or_string() {
    let svc = pb::Service {
        metadata: Some(meta::ObjectMeta { name: s("web"), ..Default::default() }),
        spec: Some(pb::ServiceSpec {
            ports: vec![pb::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: Some(IntOrString { r#type: Some(1), int_val: Some(0), str_val: s("http") }),
                ..Default::default()
            }],
            selector: map(&[("app", "web".to_string())]),
            ..Default::default()
        }),
        status: None,
    };
    let want = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}], "selector": {"app": "web"}}
    });
    check::<k8s_openapi::api::core::v1::Service>("Service", &svc, want);
}

#[test]
fn every_served_kind_has_a_message() {
    for k in skiff_core::kinds::all() {
        assert!(table::KINDS.iter().any(|(_, kind, _)| *kind == k.info().kind), "{} has no message", k.info().kind);
    }
}

/// A message repeated on the wire merges into the first, packed numbers read like unpacked ones,
/// unknown fields are skipped.
#[test]
fn merges_packed_lists_and_unknown_fields() {
    let first = meta::ObjectMeta { name: s("a"), ..Default::default() }.encode_to_vec();
    let second = meta::ObjectMeta { namespace: s("ns"), ..Default::default() }.encode_to_vec();
    let ld = |tag: u8, b: &[u8]| [vec![tag << 3 | 2, b.len() as u8], b.to_vec()].concat();
    // spec.securityContext.supplementalGroups = [1, 300] packed; field 999 unknown.
    let groups = ld(4, &[1, 0xac, 0x02]);
    let spec = ld(2, &ld(14, &groups));
    let unknown = [0xb8, 0x3e, 0x01];
    let raw = [ld(1, &first), ld(1, &second), spec, unknown.to_vec()].concat();
    let unk = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("Pod") }),
        raw: Some(raw),
        ..Default::default()
    };
    let got = decode(&[MAGIC.to_vec(), unk.encode_to_vec()].concat()).expect("decode");
    assert_eq!(got["metadata"], json!({"name": "a", "namespace": "ns"}));
    assert_eq!(got["spec"]["securityContext"]["supplementalGroups"], json!([1, 300]));
}

fn bad_request(body: &[u8]) -> String {
    match decode(body) {
        Err(ApiError::BadRequest(m)) => m,
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn bad_bodies_are_400s_in_kubernetes_words() {
    let pod = body("Pod", &rich_pod());
    // Every truncation either decodes (cut at a field boundary) or is refused; none panics.
    for n in 0..pod.len() {
        let _ = decode(&pod[..n]);
    }
    assert!(bad_request(&pod[..pod.len() - 1]).contains("unexpected EOF"));
    assert!(bad_request(b"{}").contains("does not appear to be a protobuf message"));
    assert_eq!(
        bad_request(&body("Deployment", &rich_pod())),
        "no kind \"Deployment\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
    );
    let late = pb::Pod {
        metadata: Some(meta::ObjectMeta { creation_timestamp: time(i64::MAX), ..Default::default() }),
        ..Default::default()
    };
    let msg = bad_request(&body("Pod", &late));
    assert!(msg.starts_with("Pod in version \"v1\" cannot be handled as a Pod: proto: Time:"), "{msg}");
    assert!(msg.contains("out of range"), "{msg}");
    // metadata (field 1) as a varint.
    let wrong = Unknown {
        type_meta: Some(TypeMeta { api_version: s("v1"), kind: s("Pod") }),
        raw: Some(vec![0x08, 0x01]),
        ..Default::default()
    };
    let msg = bad_request(&[MAGIC.to_vec(), wrong.encode_to_vec()].concat());
    assert!(msg.ends_with("proto: wrong wireType = 0 for field metadata"), "{msg}");
    // A length past the end, deep inside spec.containers[0].name.
    let absurd = [0x12, 0x06, 0x12, 0x04, 0x0a, 0xff, 0xff, 0x7f];
    let absurd = Unknown { raw: Some(absurd.to_vec()), ..wrong };
    assert!(bad_request(&[MAGIC.to_vec(), absurd.encode_to_vec()].concat()).ends_with("unexpected EOF"));
    let no_kind = Unknown { raw: Some(vec![]), ..Default::default() };
    assert!(bad_request(&[MAGIC.to_vec(), no_kind.encode_to_vec()].concat()).contains("'Kind' is missing"));
}

#[test]
fn lease_of_a_named_group_with_micro_times() {
    use k8s_pb::api::coordination::v1 as coordination;
    let lease = coordination::Lease {
        metadata: Some(meta::ObjectMeta { name: s("node-1"), namespace: s("kube-node-lease"), ..Default::default() }),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime { seconds: Some(1_767_225_600), nanos: Some(123_456_000) }),
            ..Default::default()
        }),
    };
    let want = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.123456Z"}
    });
    let got = decode(&body_in("coordination.k8s.io/v1", "Lease", &lease)).expect("decode");
    assert_eq!(got, want, "\n got: {got:#}");
    // The core group has no Lease.
    let err = decode(&body("Lease", &lease)).expect_err("not in v1");
    assert!(err.to_string().contains("no kind \"Lease\" is registered for version \"v1\""), "{err}");
}

#[test]
fn rbac_bindings_and_service_accounts() {
    use k8s_pb::api::rbac::v1 as rbac;
    let binding = rbac::RoleBinding {
        metadata: Some(meta::ObjectMeta { name: s("read-pods"), namespace: s("default"), ..Default::default() }),
        subjects: vec![
            rbac::Subject {
                kind: s("User"),
                api_group: s("rbac.authorization.k8s.io"),
                name: s("jane"),
                namespace: None,
            },
            rbac::Subject { kind: s("ServiceAccount"), api_group: None, name: s("app"), namespace: s("default") },
        ],
        role_ref: Some(rbac::RoleRef { api_group: s("rbac.authorization.k8s.io"), kind: s("Role"), name: s("reader") }),
    };
    let want = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "read-pods", "namespace": "default"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
            {"kind": "ServiceAccount", "name": "app", "namespace": "default"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    });
    let got = decode(&body_in("rbac.authorization.k8s.io/v1", "RoleBinding", &binding)).expect("decode");
    assert_eq!(got, want, "\n got: {got:#}");

    let role = rbac::ClusterRole {
        metadata: Some(meta::ObjectMeta { name: s("metrics"), ..Default::default() }),
        rules: vec![rbac::PolicyRule {
            verbs: vec!["get".into()],
            non_resource_ur_ls: vec!["/metrics".into()],
            ..Default::default()
        }],
        aggregation_rule: None,
    };
    let got = decode(&body_in("rbac.authorization.k8s.io/v1", "ClusterRole", &role)).expect("decode");
    assert_eq!(got["rules"], json!([{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]), "\n got: {got:#}");

    let account = pb::ServiceAccount {
        metadata: Some(meta::ObjectMeta { name: s("app"), namespace: s("default"), ..Default::default() }),
        secrets: vec![pb::ObjectReference { name: s("token"), ..Default::default() }],
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    let want = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "default"},
        "secrets": [{"name": "token"}], "automountServiceAccountToken": false});
    check::<k8s_openapi::api::core::v1::ServiceAccount>("ServiceAccount", &account, want);
}

/// What kubectl 1.32 sends for `kubectl create token app --duration 10m --bound-object-kind Pod
/// --bound-object-name web`: a TokenRequest, a subresource's body rather than a served kind.
#[test]
fn token_request_as_kubectl_sends_it() {
    use k8s_pb::api::authentication::v1 as authn;
    let request = authn::TokenRequest {
        metadata: Some(meta::ObjectMeta { creation_timestamp: Some(meta::Time::default()), ..Default::default() }),
        spec: Some(authn::TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(600),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("web"),
                u_id: s(""),
            }),
        }),
        status: Some(authn::TokenRequestStatus { token: s(""), expiration_timestamp: Some(meta::Time::default()) }),
    };
    let got = decode(&body_in("authentication.k8s.io/v1", "TokenRequest", &request)).expect("decode");
    let want = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "metadata": {},
        "spec": {"expirationSeconds": 600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web"}},
        "status": {},
    });
    assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");
    let typed: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(got).expect("typed");
    assert_eq!(typed.spec.and_then(|s| s.expiration_seconds), Some(600));
}

mod crd {
    //! A CustomResourceDefinition as client-go's apiextensions clientset sends it: schemas with
    //! `x-kubernetes-*` extensions, raw JSON defaults and enums, and the schema-or-bool,
    //! schema-or-array and schema-or-strings unions.

    use super::*;
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;

    type Crd = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    fn raw(v: Value) -> ext::Json {
        ext::Json { raw: Some(v.to_string().into_bytes()) }
    }

    fn props(entries: Vec<(&str, ext::JsonSchemaProps)>) -> std::collections::BTreeMap<String, ext::JsonSchemaProps> {
        entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn typed(t: &str) -> ext::JsonSchemaProps {
        ext::JsonSchemaProps { r#type: s(t), ..Default::default() }
    }

    /// As Go's JSON decoder fills the union: a schema also `allows`.
    fn or_bool(schema: Option<ext::JsonSchemaProps>) -> Option<Box<ext::JsonSchemaPropsOrBool>> {
        Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(schema.is_some()), schema: schema.map(Box::new) }))
    }

    fn items(schema: ext::JsonSchemaProps) -> Option<Box<ext::JsonSchemaPropsOrArray>> {
        Some(Box::new(ext::JsonSchemaPropsOrArray { schema: Some(Box::new(schema)), j_son_schemas: vec![] }))
    }

    fn spec_schema() -> ext::JsonSchemaProps {
        let replicas = ext::JsonSchemaProps {
            format: s("int32"),
            default: Some(raw(json!(1))),
            minimum: Some(1.0),
            maximum: Some(10.0),
            ..typed("integer")
        };
        let mode = ext::JsonSchemaProps {
            description: s("how to run"),
            r#enum: vec![raw(json!("fast")), raw(json!("safe"))],
            default: Some(raw(json!("safe"))),
            ..typed("string")
        };
        let ratio = ext::JsonSchemaProps {
            multiple_of: Some(0.25),
            maximum: Some(1.5),
            exclusive_maximum: Some(true),
            example: Some(raw(json!(0.75))),
            ..typed("number")
        };
        let port = ext::JsonSchemaProps {
            x_kubernetes_int_or_string: Some(true),
            any_of: vec![typed("integer"), typed("string")],
            ..Default::default()
        };
        let ports = ext::JsonSchemaProps {
            items: items(ext::JsonSchemaProps {
                required: vec!["name".into()],
                properties: props(vec![("name", typed("string")), ("port", port)]),
                ..typed("object")
            }),
            x_kubernetes_list_type: s("map"),
            x_kubernetes_list_map_keys: vec!["name".into()],
            max_items: Some(16),
            ..typed("array")
        };
        let tags = ext::JsonSchemaProps {
            items: items(ext::JsonSchemaProps { max_length: Some(63), pattern: s("^[a-z]+$"), ..typed("string") }),
            x_kubernetes_list_type: s("set"),
            ..typed("array")
        };
        let labels = ext::JsonSchemaProps {
            additional_properties: or_bool(Some(typed("string"))),
            x_kubernetes_map_type: s("granular"),
            ..typed("object")
        };
        let strict = ext::JsonSchemaProps {
            additional_properties: or_bool(None),
            properties: props(vec![("a", typed("boolean"))]),
            default: Some(raw(json!({"a": true}))),
            nullable: Some(true),
            ..typed("object")
        };
        let template = ext::JsonSchemaProps {
            x_kubernetes_embedded_resource: Some(true),
            x_kubernetes_preserve_unknown_fields: Some(true),
            ..typed("object")
        };
        let anything = ext::JsonSchemaProps { x_kubernetes_preserve_unknown_fields: Some(true), ..Default::default() };
        ext::JsonSchemaProps {
            required: vec!["replicas".into()],
            properties: props(vec![
                ("replicas", replicas),
                ("mode", mode),
                ("ratio", ratio),
                ("ports", ports),
                ("tags", tags),
                ("labels", labels),
                ("strict", strict),
                ("template", template),
                ("anything", anything),
            ]),
            x_kubernetes_validations: vec![
                ext::ValidationRule {
                    rule: s("self.replicas <= 5 || self.mode == 'fast'"),
                    message: s("too many"),
                    field_path: s(".replicas"),
                    reason: s("FieldValueForbidden"),
                    ..Default::default()
                },
                ext::ValidationRule {
                    rule: s("self.replicas >= oldSelf.replicas"),
                    message_expression: s("'cannot shrink to ' + string(self.replicas)"),
                    optional_old_self: Some(true),
                    ..Default::default()
                },
            ],
            ..typed("object")
        }
    }

    fn crd() -> ext::CustomResourceDefinition {
        let root = ext::JsonSchemaProps {
            description: s("A widget."),
            properties: props(vec![
                ("apiVersion", typed("string")),
                ("kind", typed("string")),
                ("metadata", typed("object")),
                ("spec", spec_schema()),
                (
                    "status",
                    ext::JsonSchemaProps {
                        properties: props(vec![("replicas", typed("integer")), ("selector", typed("string"))]),
                        ..typed("object")
                    },
                ),
            ]),
            ..typed("object")
        };
        let old = ext::JsonSchemaProps {
            // Draft-4 forms the v1 API still carries: tuple items, dependencies, a `$schema`.
            schema: s("http://json-schema.org/draft-04/schema#"),
            properties: props(vec![(
                "pair",
                ext::JsonSchemaProps {
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: None,
                        j_son_schemas: vec![typed("string"), typed("integer")],
                    })),
                    ..typed("array")
                },
            )]),
            dependencies: [
                ("a".to_string(), ext::JsonSchemaPropsOrStringArray { schema: None, property: vec!["b".into()] }),
                (
                    "c".to_string(),
                    ext::JsonSchemaPropsOrStringArray { schema: Some(typed("object")), property: vec![] },
                ),
            ]
            .into(),
            x_kubernetes_preserve_unknown_fields: Some(true),
            ..typed("object")
        };
        let column = |name: &str, ty: &str, path: &str, priority: i32| ext::CustomResourceColumnDefinition {
            name: s(name),
            r#type: s(ty),
            json_path: s(path),
            priority: Some(priority),
            ..Default::default()
        };
        ext::CustomResourceDefinition {
            metadata: Some(meta::ObjectMeta { name: s("widgets.example.com"), ..Default::default() }),
            spec: Some(ext::CustomResourceDefinitionSpec {
                group: s("example.com"),
                names: Some(ext::CustomResourceDefinitionNames {
                    plural: s("widgets"),
                    singular: s("widget"),
                    short_names: vec!["wd".into()],
                    kind: s("Widget"),
                    list_kind: s("WidgetList"),
                    categories: vec!["all".into()],
                }),
                scope: s("Namespaced"),
                versions: vec![
                    ext::CustomResourceDefinitionVersion {
                        name: s("v1"),
                        served: Some(true),
                        storage: Some(true),
                        schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(root) }),
                        subresources: Some(ext::CustomResourceSubresources {
                            status: Some(ext::CustomResourceSubresourceStatus {}),
                            scale: Some(ext::CustomResourceSubresourceScale {
                                spec_replicas_path: s(".spec.replicas"),
                                status_replicas_path: s(".status.replicas"),
                                label_selector_path: s(".status.selector"),
                            }),
                        }),
                        additional_printer_columns: vec![
                            column("Replicas", "integer", ".spec.replicas", 0),
                            ext::CustomResourceColumnDefinition {
                                format: s("date-time"),
                                description: s("when"),
                                ..column("Age", "date", ".metadata.creationTimestamp", 1)
                            },
                        ],
                        selectable_fields: vec![ext::SelectableField { json_path: s(".spec.mode") }],
                        ..Default::default()
                    },
                    ext::CustomResourceDefinitionVersion {
                        name: s("v1beta1"),
                        served: Some(true),
                        storage: Some(false),
                        deprecated: Some(true),
                        deprecation_warning: s("use v1"),
                        schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(old) }),
                        ..Default::default()
                    },
                ],
                conversion: Some(ext::CustomResourceConversion {
                    strategy: s("Webhook"),
                    webhook: Some(ext::WebhookConversion {
                        client_config: Some(ext::WebhookClientConfig {
                            url: None,
                            service: Some(ext::ServiceReference {
                                namespace: s("system"),
                                name: s("convert"),
                                path: s("/convert"),
                                port: Some(8443),
                            }),
                            ca_bundle: Some(b"-----BEGIN CERTIFICATE-----\n\x00\xff".to_vec()),
                        }),
                        conversion_review_versions: vec!["v1".into(), "v1beta1".into()],
                    }),
                }),
                preserve_unknown_fields: Some(false),
            }),
            status: None,
        }
    }

    fn crd_json() -> Value {
        let t = |ty: &str| json!({"type": ty});
        let spec = json!({
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "default": 1, "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "description": "how to run", "enum": ["fast", "safe"], "default": "safe"},
                "ratio": {"type": "number", "multipleOf": 0.25, "maximum": 1.5, "exclusiveMaximum": true, "example": 0.75},
                "ports": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {"type": "object", "required": ["name"], "properties": {
                        "name": t("string"),
                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [t("integer"), t("string")]}
                    }},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"]
                },
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 63, "pattern": "^[a-z]+$"},
                    "x-kubernetes-list-type": "set"},
                "labels": {"type": "object", "additionalProperties": t("string"), "x-kubernetes-map-type": "granular"},
                "strict": {"type": "object", "additionalProperties": false, "properties": {"a": t("boolean")},
                    "default": {"a": true}, "nullable": true},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true},
                "anything": {"x-kubernetes-preserve-unknown-fields": true}
            },
            "x-kubernetes-validations": [
                {"rule": "self.replicas <= 5 || self.mode == 'fast'", "message": "too many",
                    "fieldPath": ".replicas", "reason": "FieldValueForbidden"},
                {"rule": "self.replicas >= oldSelf.replicas",
                    "messageExpression": "'cannot shrink to ' + string(self.replicas)", "optionalOldSelf": true}
            ]
        });
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "singular": "widget", "shortNames": ["wd"], "kind": "Widget",
                    "listKind": "WidgetList", "categories": ["all"]},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {
                            "type": "object",
                            "description": "A widget.",
                            "properties": {
                                "apiVersion": t("string"), "kind": t("string"), "metadata": t("object"),
                                "spec": spec,
                                "status": {"type": "object", "properties": {"replicas": t("integer"), "selector": t("string")}}
                            }
                        }},
                        "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                        "additionalPrinterColumns": [
                            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 0},
                            {"name": "Age", "type": "date", "format": "date-time", "description": "when",
                                "jsonPath": ".metadata.creationTimestamp", "priority": 1}
                        ],
                        "selectableFields": [{"jsonPath": ".spec.mode"}]
                    },
                    {
                        "name": "v1beta1", "served": true, "storage": false,
                        "deprecated": true, "deprecationWarning": "use v1",
                        "schema": {"openAPIV3Schema": {
                            "type": "object",
                            "$schema": "http://json-schema.org/draft-04/schema#",
                            "properties": {"pair": {"type": "array", "items": [t("string"), t("integer")]}},
                            "dependencies": {"a": ["b"], "c": t("object")},
                            "x-kubernetes-preserve-unknown-fields": true
                        }}
                    }
                ],
                "conversion": {"strategy": "Webhook", "webhook": {
                    "clientConfig": {
                        "service": {"namespace": "system", "name": "convert", "path": "/convert", "port": 8443},
                        "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCgD/"
                    },
                    "conversionReviewVersions": ["v1", "v1beta1"]
                }},
                "preserveUnknownFields": false
            }
        })
    }

    /// Every number as a float: k8s-openapi's `f64` fields write `10.0` where Go writes `10`.
    fn floats(v: Value) -> Value {
        match v {
            Value::Number(n) => n.as_f64().map_or(Value::Number(n), |x| json!(x)),
            Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
            other => other,
        }
    }

    /// The decoded CRD is the JSON one, number for number, and k8s-openapi's typed round trip of
    /// that JSON keeps every field (up to how it writes doubles).
    #[test]
    fn crd_decodes_to_its_json() {
        let want = crd_json();
        let got = decode(&body_in("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd())).expect("decode");
        assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");
        let typed: Crd = serde_json::from_value(want.clone()).expect("k8s-openapi takes it");
        assert_eq!(floats(serde_json::to_value(typed).expect("encode")), floats(want), "canonical");
        // Doubles read as Go writes them: 10 stays an integer, 1.5 a float.
        let replicas =
            &got["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"];
        assert!(replicas["maximum"].is_u64(), "{replicas}");
    }

    /// A JSONSchemaProps decoded on its own.
    fn schema_props(schema: &ext::JsonSchemaProps) -> Result<Value, wire::WireError> {
        let index = table::MESSAGES
            .iter()
            .position(|m| m.name.ends_with("apiextensions.v1.JSONSchemaProps"))
            .and_then(|i| u16::try_from(i).ok())
            .expect("JSONSchemaProps in the table");
        let mut out = Map::new();
        decode::message(index, &schema.encode_to_vec(), &mut out, 0)?;
        Ok(Value::Object(out))
    }

    /// The unions as Go's `MarshalJSON` writes them: a list over a schema over a bool; unset, a
    /// schema-or-bool is `false` and the others `null`; an empty `JSON` is `null`.
    #[test]
    fn unions_pick_as_go_marshals_them() {
        let or_strings = |schema: Option<ext::JsonSchemaProps>, property: &[&str]| ext::JsonSchemaPropsOrStringArray {
            schema,
            property: property.iter().map(|p| p.to_string()).collect(),
        };
        let schema = ext::JsonSchemaProps {
            additional_properties: Some(Box::default()),
            additional_items: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(false), schema: None })),
            not: Some(Box::new(ext::JsonSchemaProps {
                additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool { allows: Some(true), schema: None })),
                additional_items: Some(Box::new(ext::JsonSchemaPropsOrBool {
                    allows: Some(false),
                    schema: Some(Box::new(typed("string"))),
                })),
                items: Some(Box::default()),
                ..Default::default()
            })),
            items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                schema: Some(Box::new(typed("string"))),
                j_son_schemas: vec![typed("integer")],
            })),
            dependencies: [
                ("none".to_string(), or_strings(None, &[])),
                ("both".to_string(), or_strings(Some(typed("object")), &["p"])),
                ("schema".to_string(), or_strings(Some(typed("object")), &[])),
            ]
            .into(),
            r#enum: vec![ext::Json { raw: None }, raw(json!([1, "a", null, {"b": 2.5}]))],
            default: Some(ext::Json { raw: Some(vec![]) }),
            // Go writes its non-pointer booleans whether set or not; they are kept (false is
            // what their absence means too).
            exclusive_maximum: Some(false),
            ..Default::default()
        };
        let want = json!({
            "additionalProperties": false,
            "additionalItems": false,
            "not": {"additionalProperties": true, "additionalItems": {"type": "string"}},
            "items": [{"type": "integer"}],
            "dependencies": {"none": null, "both": ["p"], "schema": {"type": "object"}},
            "enum": [null, [1, "a", null, {"b": 2.5}]],
            "exclusiveMaximum": false
        });
        assert_eq!(schema_props(&schema).expect("decode"), want);
        let bad = ext::JsonSchemaProps { default: Some(ext::Json { raw: Some(b"{".to_vec()) }), ..Default::default() };
        let err = schema_props(&bad).expect_err("bad JSON");
        assert!(err.to_string().contains("default: invalid JSON"), "{err}");
    }
}

/// A user's extra values are lists (`ExtraValue` is a `[]string` in Go); an empty one is `null`,
/// as Go writes a nil slice.
#[test]
fn subject_access_review_extra_values_are_lists() {
    use k8s_pb::api::authorization::v1 as authz;
    let review = authz::SubjectAccessReview {
        metadata: Some(meta::ObjectMeta::default()),
        spec: Some(authz::SubjectAccessReviewSpec {
            user: s("jane"),
            extra: [
                ("scopes".to_string(), authz::ExtraValue { items: vec!["a".into(), "b".into()] }),
                ("none".to_string(), authz::ExtraValue { items: vec![] }),
            ]
            .into(),
            ..Default::default()
        }),
        status: None,
    };
    let got = decode(&body_in("authorization.k8s.io/v1", "SubjectAccessReview", &review)).expect("decode");
    assert_eq!(got["spec"], json!({"user": "jane", "extra": {"scopes": ["a", "b"], "none": null}}), "\n got: {got:#}");
}
