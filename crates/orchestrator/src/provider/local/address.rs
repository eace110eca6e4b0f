//! Loopback addresses for local droplets.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so each droplet gets an address
//! of its own and two droplets can listen on the same port, as on a real fleet. A local cloud
//! takes a /24 derived from where it lives, so two clouds on one machine (two checkouts, two
//! test runs) do not meet.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The first three octets a local cloud at `root` uses.
pub fn subnet_of(root: &Path) -> [u8; 3] {
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    // 127.0.x.x and 127.255.x.x are avoided: other software likes to sit there.
    [127, 16 + digest[0] % 200, digest[1]]
}

/// The first address of `subnet` that no droplet holds and where `port` can be bound.
pub fn free_address(subnet: [u8; 3], taken: &[Ipv4Addr], port: u16) -> Option<Ipv4Addr> {
    (2..=254)
        .map(|last| Ipv4Addr::new(subnet[0], subnet[1], subnet[2], last))
        .filter(|address| !taken.contains(address))
        .find(|address| TcpListener::bind(SocketAddrV4::new(*address, port)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_differ_between_clouds_and_stay_on_loopback() {
        let a = subnet_of(Path::new("/tmp/one/.local-cloud"));
        let b = subnet_of(Path::new("/tmp/two/.local-cloud"));
        assert_ne!(a, b);
        assert_eq!(a[0], 127);
        assert_eq!(a, subnet_of(Path::new("/tmp/one/.local-cloud")));
    }

    #[test]
    fn an_address_in_use_is_skipped() {
        let subnet = subnet_of(Path::new("/tmp/address-test"));
        let first = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 2);
        let listener = TcpListener::bind(SocketAddrV4::new(first, 0)).expect("binds");
        let port = listener.local_addr().expect("addr").port();
        let chosen = free_address(subnet, &[], port).expect("an address");
        assert_ne!(chosen, first);
        assert_eq!(free_address(subnet, &[chosen], 0).map(|a| a == chosen), Some(false));
    }
}
