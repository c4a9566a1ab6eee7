//! Node-local storage: the built-in local-path provisioner every node runs (k3s ships the same
//! as a Deployment; here it is part of the agent, so a directory is made and removed on the
//! machine that holds it). It follows the cluster's claims, volumes and classes and carries out
//! what [`local_path::actions`] decides: a claim that the binder handed to `skiff.dev/local-path`
//! and that was placed on this node gets a directory under the node's storage root and a
//! `hostPath` PersistentVolume pinned to the node, which the binder then binds; a released
//! volume of `Delete` policy loses its directory and its object.

pub mod local_path;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use skiff_client::events::{Recorder, Type};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// How soon a failed action is tried again (nothing else may change meanwhile).
const RETRY: Duration = Duration::from_secs(2);

pub struct StorageConfig {
    pub node_name: String,
    /// Where this node's volumes' directories are made.
    pub root: PathBuf,
}

/// Run the provisioner as `client` (`system:skiff-node-storage`) until the watches end.
pub async fn run(client: kube::Client, config: StorageConfig) {
    if let Err(e) = std::fs::create_dir_all(&config.root) {
        tracing::error!(error = %e, root = %config.root.display(), "the local-path provisioner has no storage directory");
        return;
    }
    let recorder = Recorder::new(client.clone(), "skiff.dev/local-path", &config.node_name);
    let (claims, claim_events) =
        crate::watch_cache::watch_all::<PersistentVolumeClaim>(&client, watcher::Config::default());
    let (volumes, volume_events) =
        crate::watch_cache::watch_all::<PersistentVolume>(&client, watcher::Config::default());
    let (classes, class_events) = crate::watch_cache::watch_all::<StorageClass>(&client, watcher::Config::default());
    let events = futures::stream::select(futures::stream::select(claim_events, volume_events), class_events);
    let mut events = std::pin::pin!(events);
    let mut retry = false;
    loop {
        if retry {
            let _ = tokio::time::timeout(RETRY, events.next()).await;
        } else if events.next().await.is_none() {
            return;
        }
        while let Some(Some(_)) = events.next().now_or_never() {}
        let ready = [
            claims.wait_until_ready().now_or_never(),
            volumes.wait_until_ready().now_or_never(),
            classes.wait_until_ready().now_or_never(),
        ];
        if ready.iter().any(Option::is_none) {
            continue;
        }
        let (c, v, s) = (claims.state(), volumes.state(), classes.state());
        let actions = local_path::actions(
            &config.node_name,
            &config.root,
            &c.iter().map(|x| x.as_ref()).collect::<Vec<_>>(),
            &v.iter().map(|x| x.as_ref()).collect::<Vec<_>>(),
            &s.iter().map(|x| x.as_ref()).collect::<Vec<_>>(),
        );
        retry = false;
        for action in actions {
            retry |= !carry_out(&client, &recorder, action).await;
        }
    }
}

/// Do one action; false if it should be tried again.
async fn carry_out(client: &kube::Client, recorder: &Recorder, action: local_path::Action) -> bool {
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    match action {
        local_path::Action::Provision { dir, volume, claim } => {
            let name = volume.metadata.name.clone().unwrap_or_default();
            let made = std::fs::create_dir_all(&dir)
                // Whatever user the pod's containers run as may write to a new volume (as k3s's
                // provisioner makes its directories).
                .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)));
            if let Err(e) = made {
                let message = format!("failed to provision volume for claim {}: {e}", claim_name(&claim));
                recorder.object(claim, Type::Warning, "ProvisioningFailed", &message).await;
                return false;
            }
            match volumes.create(&PostParams::default(), &volume).await {
                Ok(_) => {
                    tracing::info!(volume = %name, dir = %dir.display(), "provisioned");
                    let message = format!("Successfully provisioned volume {name}");
                    recorder.object(claim, Type::Normal, "ProvisioningSucceeded", &message).await;
                    true
                }
                // Made by an earlier pass whose watch event has not come yet.
                Err(kube::Error::Api(s)) if s.code == 409 => true,
                Err(e) => {
                    let message = format!("failed to provision volume for claim {}: {e}", claim_name(&claim));
                    recorder.object(claim, Type::Warning, "ProvisioningFailed", &message).await;
                    false
                }
            }
        }
        local_path::Action::Refuse { claim, message } => {
            // The recorder aggregates repeats: one event that counts, not a stream of them.
            recorder.object(claim, Type::Warning, "ProvisioningFailed", &message).await;
            true
        }
        local_path::Action::Delete { dir, name } => {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "removing a released volume's directory");
                    let reference = ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("PersistentVolume".into()),
                        name: Some(name.clone()),
                        ..Default::default()
                    };
                    let message = format!("failed to delete volume {name}: removing {}: {e}", dir.display());
                    recorder.object(reference, Type::Warning, "VolumeFailedDelete", &message).await;
                    return false;
                }
            }
            match volumes.delete(&name, &DeleteParams::default()).await {
                Ok(_) => true,
                Err(kube::Error::Api(s)) if s.code == 404 => true,
                Err(e) => {
                    tracing::warn!(error = %e, volume = %name, "deleting a released volume");
                    false
                }
            }
        }
    }
}

fn claim_name(claim: &ObjectReference) -> String {
    format!("{}/{}", claim.namespace.as_deref().unwrap_or_default(), claim.name.as_deref().unwrap_or_default())
}
