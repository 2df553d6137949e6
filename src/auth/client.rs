//! Who sent a request: the peer's address, or the client behind a trusted
//! proxy as X-Forwarded-For names it, and whether it arrived over TLS.

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::HttpRequest;

/// An address or a network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `10.0.0.7`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The key a client address is counted under: IPv4 addresses as they are,
/// IPv6 addresses by their first `ipv6_prefix` bits, since one subscriber is
/// usually handed a whole /64 and could otherwise rotate through it.
pub fn network_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Entries that do not parse are skipped; settings validation refuses them earlier.
    pub fn new(entries: &[String]) -> TrustedProxies {
        TrustedProxies { nets: entries.iter().filter_map(|e| IpNet::parse(e)).collect() }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy;
    /// then the right-most X-Forwarded-For entry that is not itself a trusted
    /// proxy (entries further left were written by the client and prove nothing).
    ///
    /// Several X-Forwarded-For lines are one list, in the order received: a
    /// proxy that appends a line of its own (HAProxy's `option forwardfor`)
    /// puts the only hop it vouches for in the last line, so the walk starts
    /// at the end of the last line, never at the client's own first line.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = canonical(req.peer_addr()?.ip());
        if self.nets.is_empty() || !self.trusts(peer) {
            return Some(peer);
        }
        let mut hops = Vec::new();
        for value in req.headers().get_all("x-forwarded-for") {
            // A line we cannot read breaks the chain: nothing left of it is believed.
            let Ok(text) = value.to_str() else {
                hops.clear();
                hops.push(None);
                continue;
            };
            hops.extend(text.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| h.parse::<IpAddr>().ok()));
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // Garbage in the chain: stop at the last address we could read.
            let Some(ip) = hop else { return Some(client) };
            client = canonical(ip);
            if !self.trusts(client) {
                return Some(client);
            }
        }
        Some(client)
    }

    /// Whether the request reached us over TLS: our own, or a trusted proxy's
    /// as it declares with `X-Forwarded-Proto: https`.
    pub fn is_https(&self, req: &ServiceRequest, tls: bool) -> bool {
        if tls {
            return true;
        }
        let Some(peer) = req.peer_addr() else { return false };
        if self.nets.is_empty() || !self.trusts(canonical(peer.ip())) {
            return false;
        }
        req.headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(IpNet::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nowhere").is_none());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "1.2.3.4"))
            .to_http_request();
        assert_eq!(proxies(&[]).client_ip(&req), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(&req), Some("203.0.113.9".parse().unwrap()));

        let via_proxy = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.4"))
            .to_http_request();
        // The client's own claim (6.6.6.6) is ignored; the first untrusted hop is the client.
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(&via_proxy), Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_lines_are_one_list_read_from_the_last() {
        // The client forged the first line; the trusted proxy appended the second.
        let req = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", "198.51.100.7"))
            .to_http_request();
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(&req), Some("198.51.100.7".parse().unwrap()));

        // A trusted hop at the end of the last line passes the walk on to the lines before.
        let chained = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .append_header(("x-forwarded-for", "6.6.6.6, 198.51.100.8"))
            .append_header(("x-forwarded-for", "10.0.0.9"))
            .to_http_request();
        assert_eq!(proxies(&["10.0.0.0/8"]).client_ip(&chained), Some("198.51.100.8".parse().unwrap()));
    }

    #[test]
    fn ipv6_clients_share_a_key_per_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_key(a, 64), network_key(b, 64));
        assert_ne!(network_key(a, 64), network_key(c, 64));
        assert_ne!(network_key(a, 128), network_key(b, 128));
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(network_key(v4, 64), v4);
    }
}
