//! The identities `skiff server`'s own components act as, none of them cluster-admin: each is
//! given a client certificate from the cluster CA, minted in memory at every start (it never
//! touches the disk; like k3s, a restart renews them) and valid for a year. What each may do is
//! what its default ClusterRole grants (bootstrap policy), or for the node what the Node
//! authorizer allows.

use anyhow::Context;
use base64::Engine;
use skiff_controllers::identity::{Credentials, Identity};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How long a component's certificate is valid.
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Mints clients for component identities against one server.
pub struct Components {
    /// The admin kubeconfig's connection (server, CA), without its credentials.
    base: kube::Config,
    /// The cluster CA, with its key.
    pki: skiff_apiserver::Pki,
    /// One client per identity (a client holds a connection pool).
    minted: Mutex<HashMap<Identity, kube::Client>>,
    /// What a component whose certificate could not be minted acts as.
    anonymous: kube::Client,
}

impl Components {
    /// None for a PKI made before the CA key was kept: the components then act as admin.
    pub fn new(admin: &kube::Config, pki: &skiff_apiserver::Pki) -> anyhow::Result<Option<Components>> {
        if pki.ca_key.is_none() {
            return Ok(None);
        }
        let mut base = admin.clone();
        base.auth_info = Default::default();
        let anonymous = kube::Client::try_from(base.clone())?;
        let components = Components { base, pki: pki.clone(), minted: Mutex::new(HashMap::new()), anonymous };
        // Minted now, so that a CA that cannot sign stops the start rather than a component.
        for who in skiff_controllers::identity::CONTROLLERS.iter().chain([&Identity::Scheduler]) {
            let client = components.mint(*who)?;
            components.minted.lock().unwrap_or_else(PoisonError::into_inner).insert(*who, client);
        }
        Ok(Some(components))
    }

    fn mint(&self, who: Identity) -> anyhow::Result<kube::Client> {
        let groups = who.groups();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        self.for_user(&who.user(), &groups)
    }

    /// A client acting as `user` in `groups`.
    pub fn for_user(&self, user: &str, groups: &[&str]) -> anyhow::Result<kube::Client> {
        let (cert, key) = (self.pki.client_certificate(user, groups, LIFETIME))
            .with_context(|| format!("issuing a certificate for {user}"))?;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut config = self.base.clone();
        config.auth_info.client_certificate_data = Some(b64(&cert));
        config.auth_info.client_key_data = Some(b64(&key).into());
        Ok(kube::Client::try_from(config)?)
    }
}

impl Credentials for Components {
    /// The client of `who` (minted at start; one not known then is minted now, and if that
    /// fails the component acts as nobody, and the log says why).
    fn client(&self, who: Identity) -> kube::Client {
        let mut minted = self.minted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = minted.get(&who) {
            return client.clone();
        }
        let client = self.mint(who).unwrap_or_else(|e| {
            tracing::error!(user = %who.user(), error = %e, "minting a component's credentials: it acts as anonymous");
            self.anonymous.clone()
        });
        minted.insert(who, client.clone());
        client
    }
}
