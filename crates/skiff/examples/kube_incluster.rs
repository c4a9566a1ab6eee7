//! A test fixture (tests/serviceaccounts.rs) run in a pod: the kube crate's in-cluster
//! configuration (`KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted token, CA and namespace)
//! listing the pods of its own namespace once a second for up to a minute. One line an attempt:
//! `forbidden: <message>` on 403, `pods: N` on success (and exit 0), any other error as it is.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client = kube::Client::try_from(kube::Config::incluster()?)?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    for _ in 0..60 {
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                println!("pods: {}", list.items.len());
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 403 => println!("forbidden: {}", status.message),
            Err(e) => println!("{e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("not allowed to list pods after a minute")
}
