//! Outbound NAT for pods: an nftables table of our own per address family (`ip skiff-<bridge>`,
//! `ip6 skiff-<bridge>` on a dual-stack node) whose postrouting nat chain masquerades what the
//! node's pods send outside their subnet, as `ip saddr SUBNET ip daddr != SUBNET masquerade` —
//! plus forwarding on.

use super::cidr::{Cidr, Family};
use super::nft::{Batch, Expr, HOOK_POSTROUTING, Hook, NftError, REG_1, expr};

const CHAIN: &str = "postrouting";
/// `srcnat` priority.
const PRIORITY_SRCNAT: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("setting up the NAT rules: {0}")]
    Nft(#[from] NftError),
    #[error(transparent)]
    Forwarding(std::io::Error),
}

/// The table that holds the NAT rules for the pods on `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("skiff-{bridge}")
}

/// Replace the table of `subnet`'s family with one that masquerades `subnet`'s outbound
/// traffic (in one transaction).
pub fn enable_batch(table: &str, subnet: Cidr) -> Batch {
    let family = subnet.family();
    let mut b = Batch::new(family, table);
    b.replace_table();
    b.add_chain(CHAIN, Some(Hook { hook: HOOK_POSTROUTING, priority: PRIORITY_SRCNAT, kind: "nat" }));
    let mut rule: Vec<Expr> = expr::in_network(expr::saddr(family, REG_1), subnet, expr::CMP_EQ).into();
    rule.extend(expr::in_network(expr::daddr(family, REG_1), subnet, expr::CMP_NEQ));
    rule.push(expr::masquerade(false));
    b.add_rule(CHAIN, rule);
    b
}

/// Masquerade the pods' outbound traffic from each of `subnets` (one per family) and let the
/// kernel forward it; a family the node has no subnet in has no table.
pub fn enable(bridge: &str, subnets: &[Cidr]) -> Result<(), NatError> {
    for family in [Family::V4, Family::V6] {
        match subnets.iter().find(|s| s.family() == family) {
            Some(subnet) => {
                super::nft::apply(&enable_batch(&table_name(bridge), *subnet))?;
                super::forwarding(family).map_err(NatError::Forwarding)?;
            }
            None => super::nft::remove_table(family, &table_name(bridge))?,
        }
    }
    Ok(())
}

/// No NAT for this bridge's pods (whatever an earlier run set up is removed).
pub fn disable(bridge: &str) -> Result<(), NatError> {
    super::nft::remove_table(Family::V4, &table_name(bridge))?;
    Ok(super::nft::remove_table(Family::V6, &table_name(bridge))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_batch_replaces_the_table_with_one_rule() {
        let subnet = Cidr::parse("10.42.0.0/24").expect("subnet");
        let (buf, last) = enable_batch("skiff-skiff0", subnet).encode();
        assert_eq!(last, 5);
        // The subnet's mask and network are in the rule, in network order.
        let find = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        assert!(find(&[255, 255, 255, 0]) && find(&[10, 42, 0, 0]));
        assert!(find(b"masq\0") && find(b"nat\0") && find(b"postrouting\0"));
    }
}
