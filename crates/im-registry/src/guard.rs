//! `NetworkGuard`: keeps registry traffic away from addresses a registry has no business
//! sending us to. A redirect `Location`, a token realm or an upload location may point at a
//! private, loopback, link-local or cloud-metadata address only when that address is the
//! registry's own. Literal IP targets are checked before the request; names are checked by
//! the resolver every connection uses, so a name that later resolves elsewhere (DNS
//! rebinding) is caught too.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// What kind of address an IP is, as far as the guard cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    /// Unspecified, multicast, broadcast, documentation and other reserved ranges.
    Reserved,
}

impl AddressClass {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Public => "public address",
            Self::Loopback => "it is a loopback address that is not the registry's own",
            Self::Private => "it is a private address that is not the registry's own",
            Self::LinkLocal => "it is a link-local address",
            Self::Metadata => "it is a cloud metadata address",
            Self::Reserved => "it is a reserved address",
        }
    }
}

/// Host names of cloud metadata services, refused whatever they resolve to.
const METADATA_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

pub(crate) fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return classify_v4(Ipv4Addr::new(a, b, c, d));
            }
            if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                AddressClass::Metadata
            } else if v6.is_loopback() {
                AddressClass::Loopback
            } else if v6.is_unspecified()
                || v6.is_multicast()
                || segments[0] == 0x2001 && segments[1] == 0x0db8
            {
                AddressClass::Reserved
            } else if segments[0] & 0xffc0 == 0xfe80 {
                AddressClass::LinkLocal
            } else if segments[0] & 0xfe00 == 0xfc00 || segments[0] & 0xffc0 == 0xfec0 {
                AddressClass::Private
            } else {
                AddressClass::Public
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, d] = ip.octets();
    if matches!(
        [a, b, c, d],
        [169, 254, 169, 254] | [169, 254, 170, 2] | [100, 100, 100, 200] | [192, 0, 0, 192]
    ) {
        AddressClass::Metadata
    } else if a == 127 {
        AddressClass::Loopback
    } else if a == 169 && b == 254 {
        AddressClass::LinkLocal
    } else if a == 10
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..128).contains(&b))
    {
        AddressClass::Private
    } else if a == 0
        || a >= 224
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 192 && b == 0 && c == 0)
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The registries this client talks to, and the addresses they resolved to.
#[derive(Debug, Default)]
pub(crate) struct NetworkGuard {
    registry_hosts: RwLock<HashSet<String>>,
    registry_addrs: RwLock<HashSet<IpAddr>>,
}

impl NetworkGuard {
    /// Marks a registry host (without port) as one we were asked to talk to.
    pub(crate) fn trust_registry(&self, host: &Host<&str>) {
        match host {
            Host::Domain(name) => {
                self.registry_hosts
                    .write()
                    .expect("guard lock")
                    .insert(name.to_ascii_lowercase());
            }
            Host::Ipv4(v4) => self.trust_addr(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => self.trust_addr(IpAddr::V6(*v6)),
        }
    }

    fn trust_addr(&self, ip: IpAddr) {
        self.registry_addrs.write().expect("guard lock").insert(ip);
    }

    fn allowed(&self, ip: IpAddr) -> Result<(), AddressClass> {
        match classify(ip) {
            AddressClass::Public => Ok(()),
            _ if self
                .registry_addrs
                .read()
                .expect("guard lock")
                .contains(&ip) =>
            {
                Ok(())
            }
            class => Err(class),
        }
    }

    /// Checks a URL a registry handed us (redirect, realm, upload location) before use.
    /// Names are checked again when they are resolved.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), &'static str> {
        match url.host() {
            None => Err("it has no host"),
            Some(Host::Ipv4(v4)) => self.allowed(IpAddr::V4(v4)).map_err(AddressClass::reason),
            Some(Host::Ipv6(v6)) => self.allowed(IpAddr::V6(v6)).map_err(AddressClass::reason),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_NAMES.contains(&name.as_str()) {
                    Err("it names a cloud metadata service")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Filters the addresses a name resolved to.
    fn filter(&self, name: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(format!(
                "refusing to connect to `{name}`: it names a cloud metadata service"
            ));
        }
        if self
            .registry_hosts
            .read()
            .expect("guard lock")
            .contains(&name)
        {
            for addr in &addrs {
                self.trust_addr(addr.ip());
            }
            return Ok(addrs);
        }
        let mut refused = None;
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| match self.allowed(addr.ip()) {
                Ok(()) => true,
                Err(class) => {
                    refused = Some(class);
                    false
                }
            })
            .collect();
        match (kept.is_empty(), refused) {
            (true, Some(class)) => Err(format!(
                "refusing to connect to `{name}`: {}",
                class.reason()
            )),
            (true, None) => Err(format!("`{name}` resolved to no address")),
            (false, _) => Ok(kept),
        }
    }
}

/// The resolver every connection goes through.
pub(crate) struct GuardedResolver(pub(crate) Arc<NetworkGuard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = guard.filter(&host, addrs)?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_the_dangerous_ranges() {
        assert_eq!(classify(ip("169.254.169.254")), AddressClass::Metadata);
        assert_eq!(
            classify(ip("::ffff:169.254.169.254")),
            AddressClass::Metadata
        );
        assert_eq!(classify(ip("64:ff9b::a9fe:a9fe")), AddressClass::Metadata);
        assert_eq!(classify(ip("fd00:ec2::254")), AddressClass::Metadata);
        assert_eq!(classify(ip("169.254.1.1")), AddressClass::LinkLocal);
        assert_eq!(classify(ip("fe80::1")), AddressClass::LinkLocal);
        assert_eq!(classify(ip("10.1.2.3")), AddressClass::Private);
        assert_eq!(classify(ip("172.31.0.1")), AddressClass::Private);
        assert_eq!(classify(ip("192.168.0.1")), AddressClass::Private);
        assert_eq!(classify(ip("100.64.0.1")), AddressClass::Private);
        assert_eq!(classify(ip("fd12::1")), AddressClass::Private);
        assert_eq!(classify(ip("127.0.0.2")), AddressClass::Loopback);
        assert_eq!(classify(ip("::1")), AddressClass::Loopback);
        assert_eq!(classify(ip("0.0.0.0")), AddressClass::Reserved);
        assert_eq!(classify(ip("8.8.8.8")), AddressClass::Public);
        assert_eq!(classify(ip("172.32.0.1")), AddressClass::Public);
        assert_eq!(classify(ip("2a00:1450::1")), AddressClass::Public);
    }

    #[test]
    fn registry_addresses_are_allowed_others_not() {
        let guard = NetworkGuard::default();
        guard.trust_registry(&Host::Ipv4(Ipv4Addr::LOCALHOST));
        let ok = |u: &str| guard.check_url(&Url::parse(u).unwrap());
        assert!(ok("http://127.0.0.1:9999/x").is_ok());
        assert!(ok("http://127.0.0.2/x").is_err());
        assert!(ok("http://169.254.169.254/latest/meta-data").is_err());
        assert!(ok("http://[fd00:ec2::254]/").is_err());
        assert!(ok("http://metadata.google.internal/").is_err());
        assert!(ok("https://storage.example.com/blob").is_ok());
    }

    #[test]
    fn resolution_filters_private_answers_for_foreign_names() {
        let guard = NetworkGuard::default();
        guard.trust_registry(&Host::Domain("registry.internal"));
        let addrs = vec!["10.0.0.5:0".parse().unwrap()];
        // The registry's own name may resolve privately, and its address becomes trusted.
        assert_eq!(
            guard.filter("registry.internal", addrs.clone()).unwrap(),
            addrs
        );
        assert!(guard.filter("storage.internal", addrs.clone()).is_ok());
        // Another private address is refused for a foreign name.
        let other = vec!["10.0.0.6:0".parse().unwrap()];
        assert!(guard.filter("storage.internal", other).is_err());
        let mixed = vec!["10.9.9.9:0".parse().unwrap(), "8.8.8.8:0".parse().unwrap()];
        assert_eq!(guard.filter("cdn.example", mixed).unwrap().len(), 1);
    }
}
