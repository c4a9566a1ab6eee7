//! `skiff kubeconfig --user NAME --group G`: a kubeconfig for another identity, its client
//! certificate issued by the cluster CA that `skiff server` keeps in the data directory. What
//! the user may then do is what RBAC grants `NAME` and its groups.

use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// A kubeconfig for `user` in `groups` against the server the admin kubeconfig (`admin`, its
/// text) names, valid for `lifetime`.
pub fn kubeconfig(
    data_dir: &Path,
    admin: &str,
    user: &str,
    groups: &[String],
    lifetime: Duration,
) -> anyhow::Result<String> {
    anyhow::ensure!(!user.trim().is_empty(), "--user: a user name is required");
    let config = kube::config::Kubeconfig::from_yaml(admin).context("reading the admin kubeconfig")?;
    let server = (config.clusters.first())
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .context("the admin kubeconfig names no server")?;
    let pki = skiff_apiserver::pki::Pki::load(&data_dir.join("pki"))?;
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let (cert, key) = pki.client_certificate(user, &groups, lifetime)?;
    Ok(skiff_apiserver::pki::kubeconfig(&server, &pki.ca_cert, user, &cert, &key))
}

/// `30s`, `90m`, `8h`, `30d` (a number alone is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 8h or 30d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?} is not a duration like 8h or 30d")),
    };
    n.checked_mul(seconds).filter(|s| *s > 0).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert!(parse_duration("0h").is_err() && parse_duration("1w").is_err() && parse_duration("h").is_err());
    }
}
