//! Deterministic ports: a base per service plus a hash of the project-environment.
//!
//! The hash makes a service's port predictable without a registry, and the same on every
//! run. Two project-environments whose hashes meet on a droplet are told apart by probing
//! upwards to the next port free on every droplet the service runs on; the allocation order
//! is fixed (ports already given first, then the rest sorted), so the answer never varies.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// How far above its base a service's hash-derived port may land.
pub const PORT_RANGE: u16 = 1000;

/// A short, stable hash of a project-environment, for naming resources.
pub fn resource_hash(project: &str, environment: &str) -> String {
    let digest = Sha256::digest(format!("{project}:{environment}").as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The port a project-environment's service would get with nobody else around.
pub fn hash_port(project: &str, environment: &str, base: u16, range: u16) -> u16 {
    let digest = Sha256::digest(format!("{project}:{environment}").as_bytes());
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let offset = u16::try_from(value % u32::from(range.max(1))).expect("below range");
    base.saturating_add(offset)
}

/// Where a service's ports start when the configuration does not say.
pub fn default_base_port(service: &str) -> u16 {
    match service {
        "backend" | "api" => 8000,
        "frontend" | "web" => 9000,
        other => {
            let digest = Sha256::digest(other.as_bytes());
            10000 + 1000 * u16::from(digest[0] % 50)
        }
    }
}

/// The ports in use on each droplet while a plan is made.
///
/// One bit per port per droplet. Probing ORs the words of every droplet a service runs on and
/// looks for a zero bit, so a crowded droplet costs a few word operations per 64 ports.
#[derive(Debug)]
pub struct PortBook {
    reserved: Box<[u64; WORDS]>,
    slots: HashMap<String, usize>,
    used: Vec<Box<[u64; WORDS]>>,
}

const WORDS: usize = 65536 / 64;

/// No port was left on the droplets a service runs on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no free port is left on {droplets} for {service}", droplets = droplets.join(", "))]
pub struct PortsExhausted {
    pub service: String,
    pub droplets: Vec<String>,
}

impl PortBook {
    /// A book where the privileged ports and `reserved` (the agent's, the load balancer's) are
    /// never handed to a service.
    pub fn new(reserved_ports: &[u16]) -> PortBook {
        let mut reserved = Box::new([0; WORDS]);
        for port in (0..1024).chain(reserved_ports.iter().copied()) {
            set(&mut reserved, port);
        }
        PortBook { reserved, slots: HashMap::new(), used: Vec::new() }
    }

    /// Whether `port` is free on every one of `droplets`.
    pub fn is_free(&self, port: u16, droplets: &[String]) -> bool {
        !test(&self.reserved, port)
            && droplets
                .iter()
                .all(|d| self.slots.get(d).is_none_or(|slot| !test(&self.used[*slot], port)))
    }

    /// Takes `port` on every one of `droplets`.
    pub fn take(&mut self, port: u16, droplets: &[String]) {
        for slot in self.slots_of(droplets) {
            set(&mut self.used[slot], port);
        }
    }

    /// Takes the first port at or above `candidate` (wrapping past 65535 to 1024) that is free
    /// on every one of `droplets`.
    pub fn allocate(
        &mut self,
        service: &str,
        candidate: u16,
        droplets: &[String],
    ) -> Result<u16, PortsExhausted> {
        let slots = self.slots_of(droplets);
        let start = u32::from(candidate.max(1024));
        let port = self
            .first_free(&slots, start, 65536)
            .or_else(|| self.first_free(&slots, 1024, start))
            .ok_or_else(|| PortsExhausted {
                service: service.to_string(),
                droplets: droplets.to_vec(),
            })?;
        for slot in slots {
            set(&mut self.used[slot], port);
        }
        Ok(port)
    }

    fn slots_of(&mut self, droplets: &[String]) -> Vec<usize> {
        droplets
            .iter()
            .map(|droplet| match self.slots.get(droplet) {
                Some(slot) => *slot,
                None => {
                    self.used.push(Box::new([0; WORDS]));
                    self.slots.insert(droplet.clone(), self.used.len() - 1);
                    self.used.len() - 1
                }
            })
            .collect()
    }

    /// The lowest port in `from..to` free on every slot.
    fn first_free(&self, slots: &[usize], from: u32, to: u32) -> Option<u16> {
        let mut port = from;
        while port < to {
            let word = (port / 64) as usize;
            let taken =
                slots.iter().fold(self.reserved[word], |bits, slot| bits | self.used[*slot][word]);
            let free = !taken & (u64::MAX << (port % 64));
            if free != 0 {
                let found = word as u32 * 64 + free.trailing_zeros();
                return (found < to).then(|| u16::try_from(found).expect("below 65536"));
            }
            port = (word as u32 + 1) * 64;
        }
        None
    }
}

fn set(bits: &mut [u64; WORDS], port: u16) {
    bits[usize::from(port / 64)] |= 1 << (port % 64);
}

fn test(bits: &[u64; WORDS], port: u16) -> bool {
    bits[usize::from(port / 64)] & (1 << (port % 64)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ports_are_stable_and_within_range() {
        let port = hash_port("hostomatic", "prod", 8000, PORT_RANGE);
        assert_eq!(port, hash_port("hostomatic", "prod", 8000, PORT_RANGE));
        assert!((8000..9000).contains(&port));
        assert_ne!(port, hash_port("hostomatic", "uat", 8000, PORT_RANGE));
    }

    #[test]
    fn colliding_candidates_probe_to_the_next_free_port() {
        let droplets = vec!["web1".to_string(), "web2".to_string()];
        let mut book = PortBook::new(&[7700]);
        assert_eq!(book.allocate("a", 8100, &droplets), Ok(8100));
        assert_eq!(book.allocate("b", 8100, &droplets), Ok(8101));
        // Free on web2 alone is not enough: the port must be free on every droplet.
        book.take(8102, &["web1".to_string()]);
        assert_eq!(book.allocate("c", 8100, &droplets), Ok(8103));
    }

    #[test]
    fn a_port_taken_on_another_droplet_only_is_free_here() {
        let mut book = PortBook::new(&[7700]);
        book.take(8100, &["web2".to_string()]);
        assert_eq!(book.allocate("a", 8100, &["web1".to_string()]), Ok(8100));
    }

    #[test]
    fn the_agent_port_is_never_handed_out() {
        let mut book = PortBook::new(&[8100]);
        assert_eq!(book.allocate("a", 8100, &["web1".to_string()]), Ok(8101));
    }

    #[test]
    fn probing_wraps_past_the_top() {
        let mut book = PortBook::new(&[7700]);
        let web1 = ["web1".to_string()];
        book.take(u16::MAX, &web1);
        assert_eq!(book.allocate("a", u16::MAX, &web1), Ok(1024));
    }

    #[test]
    fn resource_hashes_are_short_and_stable() {
        assert_eq!(resource_hash("hostomatic", "prod").len(), 8);
        assert_eq!(resource_hash("hostomatic", "prod"), resource_hash("hostomatic", "prod"));
    }
}
