//! Identifiers that look like the ones the real API hands out (UUIDs, request ids).
//!
//! The simulator needs no cryptographic randomness: ids only have to be unique within a
//! process and look plausible, so they come from a counter run through a bit mixer, salted
//! with the start time so that two simulators in one test run do not repeat each other.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Feeds every id made by [`fresh_uuid`].
static COUNTER: AtomicU64 = AtomicU64::new(1);

fn salt() -> u64 {
    static SALT: OnceLock<u64> = OnceLock::new();
    *SALT.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // Only the low bits vary between runs; the mixer spreads them out.
        (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// SplitMix64's finaliser: a cheap bijection that scatters consecutive inputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A version-4-shaped UUID derived from `seed` (same seed, same UUID).
pub(crate) fn uuid_from(seed: u64) -> String {
    let hi = mix(seed);
    let lo = mix(hi ^ seed.rotate_left(17));
    // Set the version nibble to 4 and the variant bits to 10, as RFC 9562 asks.
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// A UUID never handed out before in this process.
pub(crate) fn fresh_uuid() -> String {
    uuid_from(COUNTER.fetch_add(1, Ordering::Relaxed) ^ salt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let a = fresh_uuid();
        let b = fresh_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version nibble in {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant in {a}");
        assert_eq!(uuid_from(7), uuid_from(7));
    }
}
