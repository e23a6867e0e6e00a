//! The SSRF guard: which addresses an outbound request may reach. Blocks
//! take URLs from users, so without it a graph could read the cloud
//! metadata service or anything else only the server can see.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Networks the guard lets through even though they are private, loopback
/// or otherwise refused: the operator's way to reach an internal LLM
/// gateway or, in tests, a server on 127.0.0.1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    // Canonical (IPv4-mapped entries stored as IPv4) network and prefix length.
    nets: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Nothing beyond public addresses: the safe default.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parse a comma-separated list of CIDRs and bare IPs (a bare IP is a
    /// single address), e.g. `"127.0.0.1/32,::1,10.1.2.3"`. Blank items are
    /// skipped so that an empty environment variable means "none".
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((addr, len)) => (addr.trim(), Some(len.trim())),
                None => (item, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("not an IP address or CIDR: {item:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(len) => len
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("bad prefix length in {item:?}"))?,
            };
            nets.push(match ip {
                // So that an entry written either way matches both forms.
                IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
                    Some(v4) => (IpAddr::V4(v4), len - 96),
                    None => (ip, len),
                },
                _ => (ip, len),
            });
        }
        Ok(Self { nets })
    }

    /// Whether `ip` lies in one of the listed networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(u32::from(net).into(), u32::from(ip).into(), len, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(net.into(), ip.into(), len, 128),
            _ => false,
        })
    }

    /// `Err(why)` when the guard refuses `ip` and the list does not allow it.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), String> {
        match forbidden(ip) {
            Some(reason) if !self.contains(ip) => Err(reason),
            _ => Ok(()),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_prefix(a: u128, b: u128, len: u8, bits: u32) -> bool {
    // A shift by the full width (len 0) matches everything.
    (a ^ b).checked_shr(bits - u32::from(len)).unwrap_or(0) == 0
}

const V4_REFUSED: &[([u8; 4], u8, &str)] = &[
    ([255, 255, 255, 255], 32, "broadcast"),
    ([0, 0, 0, 0], 8, "unspecified/\"this network\" (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments (192.0.0.0/24)"),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

const V6_REFUSED: &[([u16; 8], u8, &str)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (::)"),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1)"),
    ([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible, deprecated (::/96)"),
    ([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, "IPv4-translated (::ffff:0:0:0/96)"),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64 (64:ff9b:1::/48)"),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF protocol assignments incl. Teredo (2001::/23)"),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation (2001:db8::/32)"),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation (3fff::/20)"),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (fc00::/7)"),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local, deprecated (fec0::/10)"),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
];

/// Why the guard refuses `ip` (ignoring any allow list), or `None` when
/// it is an ordinary public address.
pub(crate) fn forbidden(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let ip = u32::from(ip);
    V4_REFUSED
        .iter()
        .find(|(net, len, _)| same_prefix(u32::from_be_bytes(*net).into(), ip.into(), *len, 32))
        .map(|(_, _, why)| *why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<String> {
    // Forms that carry an IPv4 address the packet may end up at: judge
    // that address, since the OS or a translator delivers to it.
    let s = ip.segments();
    let embedded = |v4: Ipv4Addr, form: &str| forbidden_v4(v4).map(|why| format!("{form} of {v4}, which is {why}"));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded(v4, "IPv4-mapped form");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return embedded(Ipv4Addr::from(u128::from(ip) as u32), "NAT64 form");
    }
    if s[0] == 0x2002 {
        return embedded(Ipv4Addr::from((u128::from(ip) >> 80) as u32), "6to4 form");
    }
    let bits = u128::from(ip);
    if let Some((_, _, why)) =
        V6_REFUSED.iter().find(|(net, len, _)| same_prefix(Ipv6Addr::from(*net).into(), bits, *len, 128))
    {
        return Some((*why).to_owned());
    }
    // Everything routable on the internet is in 2000::/3; the rest is
    // reserved or unassigned.
    (s[0] & 0xe000 != 0x2000).then(|| "not global unicast (outside 2000::/3)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        forbidden(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn refuses_special_ranges() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.7",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "2001::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in
            ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::808:808"]
        {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn allow_list_parses_and_matches() {
        let list = AllowList::parse(" 127.0.0.1/32, ::1 ,10.1.2.3,192.168.0.0/16,").unwrap();
        for ip in ["127.0.0.1", "::1", "10.1.2.3", "192.168.44.5", "::ffff:127.0.0.1"] {
            assert!(list.check(ip.parse().unwrap()).is_ok(), "{ip} should be allowed");
        }
        for ip in ["127.0.0.2", "10.1.2.4", "::2", "169.254.169.254"] {
            assert!(list.check(ip.parse().unwrap()).is_err(), "{ip} should be refused");
        }
        assert!(AllowList::parse("::ffff:10.0.0.0/104").unwrap().contains("10.9.9.9".parse().unwrap()));
        assert!(AllowList::parse("0.0.0.0/0").unwrap().contains("10.9.9.9".parse().unwrap()));
        assert_eq!(AllowList::parse("").unwrap(), AllowList::none());
        assert!(AllowList::parse("10.0.0.0/33").is_err());
        assert!(AllowList::parse("example.com").is_err());
        assert!(AllowList::parse("10.0.0.1/x").is_err());
    }
}
