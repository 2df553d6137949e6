//! Where a push subscription's endpoint may point. A Deployer chooses the
//! URL and the server sends the requests, so without a rule the server could
//! be made to reach its own loopback services, the cloud metadata address
//! (169.254.169.254) or internal services next to it, and read their status
//! in the dead-letter reasons. Public addresses are allowed; loopback,
//! link-local, private, shared (100.64.0.0/10), unspecified, broadcast and
//! multicast ones only inside `messaging.push_allowed_networks`.
//!
//! The rule is applied to the address actually connected to: the push
//! client resolves names through [`PolicyResolver`] (so a name that resolves,
//! or later re-resolves, to a refused address is refused) and follows no
//! redirects; a literal address is checked before sending and at creation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::auth::client::IpNet;

/// The setting that widens the rule, named in every refusal.
pub const SETTING: &str = "messaging.push_allowed_networks";

/// Which addresses push deliveries may reach.
#[derive(Debug, Clone, Default)]
pub struct PushAddressPolicy {
    allowed: Vec<IpNet>,
}

impl PushAddressPolicy {
    /// From the setting's entries (addresses or CIDR networks).
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let allowed = entries
            .iter()
            .map(|e| IpNet::parse(e).ok_or_else(|| format!("{SETTING}: '{e}' is not an address or network")))
            .collect::<Result<_, _>>()?;
        Ok(PushAddressPolicy { allowed })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allowed.iter().any(|net| net.contains(ip))
    }

    /// Refuses an endpoint whose host is a literal address the rule does not
    /// permit (names are checked when they are resolved, at each delivery).
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(endpoint).map_err(|e| format!("consumerEndpoint: {e}"))?;
        let host = url.host_str().unwrap_or_default();
        let Ok(literal) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(());
        };
        match self.permits(literal) {
            true => Ok(()),
            false => Err(refusal(literal)),
        }
    }
}

fn refusal(ip: IpAddr) -> String {
    format!(
        "consumerEndpoint: {ip} is a loopback, link-local, private or otherwise non-public address, \
         which push endpoints may not reach unless {SETTING} includes it"
    )
}

/// Whether `ip` is an address of the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let shared = ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64; // 100.64.0.0/10
    let this_network = ip.octets()[0] == 0; // 0.0.0.0/8
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || shared
        || this_network)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = (first & 0xfe00) == 0xfc00; // fc00::/7
    let link_local = (first & 0xffc0) == 0xfe80; // fe80::/10
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local)
}

/// The push client's resolver: the system's, keeping only the addresses the
/// policy permits, so the check holds for the address connected to.
pub struct PolicyResolver {
    pub policy: PushAddressPolicy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                found.into_iter().partition(|a| policy.permits(a.ip()));
            match (permitted.is_empty(), refused.first()) {
                (true, Some(first)) => Err(format!("{host} resolves to {}", refusal(first.ip())).into()),
                _ => Ok(Box::new(permitted.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_unless_allowed() {
        let strict = PushAddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!strict.permits(refused.parse().unwrap()), "{refused}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(strict.permits(public.parse().unwrap()), "{public}");
        }
        let loopback = PushAddressPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(loopback.permits("127.0.0.1".parse().unwrap()));
        assert!(!loopback.permits("10.0.0.1".parse().unwrap()));
        assert!(PushAddressPolicy::new(&["nowhere".into()]).unwrap_err().contains(SETTING));
    }

    #[test]
    fn literal_endpoints_are_checked_and_names_left_to_delivery() {
        let strict = PushAddressPolicy::default();
        let refused = strict.check_endpoint("http://169.254.169.254/latest/meta-data").unwrap_err();
        assert!(refused.contains("169.254.169.254") && refused.contains(SETTING), "{refused}");
        assert!(strict.check_endpoint("http://[::1]:8080/hook").is_err());
        assert!(strict.check_endpoint("https://hooks.example.com/in").is_ok());
        assert!(strict.check_endpoint("http://8.8.8.8/hook").is_ok());
    }
}
