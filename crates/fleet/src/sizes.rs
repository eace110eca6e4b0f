//! The catalogue of droplet sizes the orchestrator knows without asking a cloud.
//!
//! Serves CSV validation (an unknown slug is refused before anything changes) and the
//! placement rule that a droplet gets the largest size asked of it. The DigitalOcean provider
//! can validate against the live `/v2/sizes` list; this table is the offline default.

use std::cmp::Ordering;

/// One droplet size: its slug and what it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub slug: &'static str,
    pub memory_mb: u32,
    pub vcpus: u32,
    pub disk_gb: u32,
}

impl Size {
    /// Orders sizes by what a workload can use: memory first, then processors, then disk.
    pub fn capacity_cmp(&self, other: &Size) -> Ordering {
        (self.memory_mb, self.vcpus, self.disk_gb).cmp(&(
            other.memory_mb,
            other.vcpus,
            other.disk_gb,
        ))
    }
}

const fn size(slug: &'static str, memory_mb: u32, vcpus: u32, disk_gb: u32) -> Size {
    Size { slug, memory_mb, vcpus, disk_gb }
}

/// DigitalOcean's published droplet sizes (basic, general purpose, CPU- and memory-optimised).
pub const SIZES: &[Size] = &[
    size("s-1vcpu-512mb-10gb", 512, 1, 10),
    size("s-1vcpu-1gb", 1024, 1, 25),
    size("s-1vcpu-1gb-amd", 1024, 1, 25),
    size("s-1vcpu-1gb-intel", 1024, 1, 25),
    size("s-1vcpu-1gb-35gb-intel", 1024, 1, 35),
    size("s-1vcpu-2gb", 2048, 1, 50),
    size("s-1vcpu-2gb-amd", 2048, 1, 50),
    size("s-1vcpu-2gb-intel", 2048, 1, 50),
    size("s-1vcpu-2gb-70gb-intel", 2048, 1, 70),
    size("s-2vcpu-2gb", 2048, 2, 60),
    size("s-2vcpu-2gb-amd", 2048, 2, 60),
    size("s-2vcpu-2gb-intel", 2048, 2, 60),
    size("s-2vcpu-2gb-90gb-intel", 2048, 2, 90),
    size("s-2vcpu-4gb", 4096, 2, 80),
    size("s-2vcpu-4gb-amd", 4096, 2, 80),
    size("s-2vcpu-4gb-intel", 4096, 2, 80),
    size("s-2vcpu-4gb-120gb-intel", 4096, 2, 120),
    size("s-2vcpu-8gb-amd", 8192, 2, 100),
    size("s-2vcpu-8gb-160gb-intel", 8192, 2, 160),
    size("s-4vcpu-8gb", 8192, 4, 160),
    size("s-4vcpu-8gb-amd", 8192, 4, 160),
    size("s-4vcpu-8gb-intel", 8192, 4, 160),
    size("s-4vcpu-8gb-240gb-intel", 8192, 4, 240),
    size("s-4vcpu-16gb-amd", 16384, 4, 200),
    size("s-4vcpu-16gb-320gb-intel", 16384, 4, 320),
    size("s-8vcpu-16gb", 16384, 8, 320),
    size("s-8vcpu-16gb-amd", 16384, 8, 320),
    size("s-8vcpu-16gb-intel", 16384, 8, 320),
    size("s-8vcpu-16gb-480gb-intel", 16384, 8, 480),
    size("s-8vcpu-32gb-amd", 32768, 8, 400),
    size("s-8vcpu-32gb-640gb-intel", 32768, 8, 640),
    size("g-2vcpu-8gb", 8192, 2, 25),
    size("g-4vcpu-16gb", 16384, 4, 50),
    size("g-8vcpu-32gb", 32768, 8, 100),
    size("g-16vcpu-64gb", 65536, 16, 200),
    size("g-32vcpu-128gb", 131072, 32, 400),
    size("c-2", 4096, 2, 25),
    size("c-4", 8192, 4, 50),
    size("c-8", 16384, 8, 100),
    size("c-16", 32768, 16, 200),
    size("c-32", 65536, 32, 400),
    size("m-2vcpu-16gb", 16384, 2, 50),
    size("m-4vcpu-32gb", 32768, 4, 100),
    size("m-8vcpu-64gb", 65536, 8, 200),
    size("m-16vcpu-128gb", 131072, 16, 400),
    size("m-32vcpu-256gb", 262144, 32, 800),
];

/// Looks a slug up in the catalogue.
pub fn find(slug: &str) -> Option<&'static Size> {
    SIZES.iter().find(|size| size.slug == slug)
}

/// The catalogue slug closest in spelling to `slug`, to suggest in an error.
pub fn closest(slug: &str) -> Option<&'static str> {
    if slug.len() < 3 {
        return None;
    }
    SIZES
        .iter()
        .map(|size| (edit_distance(slug, size.slug), size.slug))
        .filter(|(distance, _)| *distance <= 4)
        .min()
        .map(|(_, slug)| slug)
}

/// Of two slugs from the catalogue, the one that gives more.
pub fn larger<'a>(a: &'a str, b: &'a str) -> &'a str {
    match (find(a), find(b)) {
        (Some(sa), Some(sb)) if sb.capacity_cmp(sa) == Ordering::Greater => b,
        (None, Some(_)) => b,
        _ => a,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_prefers_more_memory() {
        assert_eq!(larger("s-1vcpu-1gb", "s-2vcpu-4gb"), "s-2vcpu-4gb");
        assert_eq!(larger("s-2vcpu-4gb", "s-1vcpu-1gb"), "s-2vcpu-4gb");
    }

    #[test]
    fn larger_breaks_memory_ties_on_processors() {
        assert_eq!(larger("s-1vcpu-2gb", "s-2vcpu-2gb"), "s-2vcpu-2gb");
    }

    #[test]
    fn closest_suggests_a_near_spelling() {
        assert_eq!(closest("s-2vcpu-4g"), Some("s-2vcpu-4gb"));
        assert_eq!(closest("enormous-machine"), None);
    }
}
