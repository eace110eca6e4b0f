//! The fixed catalogue: regions, Droplet sizes and public base images.
//!
//! Figures follow the public price list of the basic (`s-*`) plans and a few dedicated-CPU
//! ones. One region (`nyc2`) is listed but unavailable, and the smallest plan is offered in
//! only some regions, so clients can meet both refusals the real API gives.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use crate::pagination::{Page, list_body};
use crate::server::Shared;

/// A data-centre region.
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) slug: &'static str,
    pub(crate) name: &'static str,
    pub(crate) available: bool,
}

/// A Droplet plan.
#[derive(Debug)]
pub(crate) struct Size {
    pub(crate) slug: &'static str,
    pub(crate) memory: u32,
    pub(crate) vcpus: u32,
    pub(crate) disk: u32,
    pub(crate) transfer: f64,
    pub(crate) price_monthly: f64,
    pub(crate) description: &'static str,
    /// `None`: offered in every available region.
    pub(crate) only_in: Option<&'static [&'static str]>,
}

/// A public distribution image.
#[derive(Debug)]
pub(crate) struct Image {
    pub(crate) id: u64,
    pub(crate) slug: &'static str,
    pub(crate) name: &'static str,
    pub(crate) distribution: &'static str,
    pub(crate) min_disk_size: u32,
    pub(crate) size_gigabytes: f64,
    pub(crate) created_at: &'static str,
}

pub(crate) const REGIONS: &[Region] = &[
    Region { slug: "nyc1", name: "New York 1", available: true },
    Region { slug: "nyc2", name: "New York 2", available: false },
    Region { slug: "nyc3", name: "New York 3", available: true },
    Region { slug: "sfo2", name: "San Francisco 2", available: true },
    Region { slug: "sfo3", name: "San Francisco 3", available: true },
    Region { slug: "ams3", name: "Amsterdam 3", available: true },
    Region { slug: "sgp1", name: "Singapore 1", available: true },
    Region { slug: "lon1", name: "London 1", available: true },
    Region { slug: "fra1", name: "Frankfurt 1", available: true },
    Region { slug: "tor1", name: "Toronto 1", available: true },
    Region { slug: "blr1", name: "Bangalore 1", available: true },
    Region { slug: "syd1", name: "Sydney 1", available: true },
    Region { slug: "atl1", name: "Atlanta 1", available: true },
];

const SMALLEST_PLAN_REGIONS: &[&str] =
    &["ams3", "blr1", "fra1", "lon1", "nyc1", "nyc3", "sfo3", "sgp1", "syd1", "tor1"];

const fn basic(
    slug: &'static str,
    memory: u32,
    vcpus: u32,
    disk: u32,
    transfer: f64,
    price_monthly: f64,
) -> Size {
    Size { slug, memory, vcpus, disk, transfer, price_monthly, description: "Basic", only_in: None }
}

pub(crate) const SIZES: &[Size] = &[
    Size {
        only_in: Some(SMALLEST_PLAN_REGIONS),
        ..basic("s-1vcpu-512mb-10gb", 512, 1, 10, 0.5, 4.0)
    },
    basic("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0),
    basic("s-1vcpu-1gb-amd", 1024, 1, 25, 1.0, 7.0),
    basic("s-1vcpu-1gb-intel", 1024, 1, 25, 1.0, 7.0),
    basic("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0),
    basic("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0),
    basic("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0),
    basic("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48.0),
    basic("s-8vcpu-16gb", 16384, 8, 320, 6.0, 96.0),
    Size { description: "CPU-Optimized", ..basic("c-2", 4096, 2, 25, 4.0, 42.0) },
    Size { description: "General Purpose", ..basic("g-2vcpu-8gb", 8192, 2, 25, 4.0, 63.0) },
    Size { description: "Memory-Optimized", ..basic("m-2vcpu-16gb", 16384, 2, 50, 4.0, 84.0) },
    Size { description: "Storage-Optimized", ..basic("so-2vcpu-16gb", 16384, 2, 300, 4.0, 131.0) },
];

pub(crate) const IMAGES: &[Image] = &[
    Image {
        id: 170_000_001,
        slug: "ubuntu-24-04-x64",
        name: "24.04 (LTS) x64",
        distribution: "Ubuntu",
        min_disk_size: 7,
        size_gigabytes: 2.34,
        created_at: "2024-04-25T13:52:48Z",
    },
    Image {
        id: 170_000_002,
        slug: "ubuntu-22-04-x64",
        name: "22.04 (LTS) x64",
        distribution: "Ubuntu",
        min_disk_size: 7,
        size_gigabytes: 2.21,
        created_at: "2022-04-21T14:04:17Z",
    },
    Image {
        id: 170_000_003,
        slug: "debian-12-x64",
        name: "12 x64",
        distribution: "Debian",
        min_disk_size: 7,
        size_gigabytes: 1.12,
        created_at: "2023-06-12T20:13:15Z",
    },
    Image {
        id: 170_000_004,
        slug: "rockylinux-9-x64",
        name: "9 x64",
        distribution: "Rocky Linux",
        min_disk_size: 10,
        size_gigabytes: 1.65,
        created_at: "2023-05-17T19:35:02Z",
    },
    Image {
        id: 170_000_005,
        slug: "fedora-41-x64",
        name: "41 x64",
        distribution: "Fedora",
        min_disk_size: 7,
        size_gigabytes: 1.31,
        created_at: "2024-11-01T16:05:30Z",
    },
];

/// Features every region advertises.
const REGION_FEATURES: &[&str] =
    &["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"];

pub(crate) fn region(slug: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.slug == slug)
}

pub(crate) fn size(slug: &str) -> Option<&'static Size> {
    SIZES.iter().find(|s| s.slug == slug)
}

pub(crate) fn image_by_slug(slug: &str) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.slug == slug)
}

pub(crate) fn image_by_id(id: u64) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.id == id)
}

/// Whether Droplets of `size` can be created in `region`.
pub(crate) fn offered_in(size: &Size, region: &Region) -> bool {
    region.available && size.only_in.is_none_or(|list| list.contains(&region.slug))
}

fn region_slugs_for(size: &Size) -> Vec<&'static str> {
    REGIONS.iter().filter(|r| offered_in(size, r)).map(|r| r.slug).collect()
}

fn available_region_slugs() -> Vec<&'static str> {
    REGIONS.iter().filter(|r| r.available).map(|r| r.slug).collect()
}

/// The region object embedded in Droplets and actions and listed by `/v2/regions`.
pub(crate) fn region_json(region: &Region) -> Value {
    let sizes: Vec<&str> = SIZES.iter().filter(|s| offered_in(s, region)).map(|s| s.slug).collect();
    json!({
        "name": region.name,
        "slug": region.slug,
        "features": REGION_FEATURES,
        "available": region.available,
        "sizes": sizes,
    })
}

/// The size object embedded in Droplets and listed by `/v2/sizes`.
pub(crate) fn size_json(size: &Size) -> Value {
    // The price list quotes hourly prices over a 672-hour month, rounded to five places.
    let hourly = (size.price_monthly / 672.0 * 100_000.0).round() / 100_000.0;
    json!({
        "slug": size.slug,
        "memory": size.memory,
        "vcpus": size.vcpus,
        "disk": size.disk,
        "transfer": size.transfer,
        "price_monthly": size.price_monthly,
        "price_hourly": hourly,
        "regions": region_slugs_for(size),
        "available": true,
        "description": size.description,
        "disk_info": [{ "type": "local", "size": { "amount": size.disk, "unit": "gib" } }],
    })
}

/// The image object embedded in Droplets created from a public image.
pub(crate) fn image_json(image: &Image) -> Value {
    json!({
        "id": image.id,
        "name": image.name,
        "distribution": image.distribution,
        "slug": image.slug,
        "public": true,
        "regions": available_region_slugs(),
        "created_at": image.created_at,
        "type": "base",
        "min_disk_size": image.min_disk_size,
        "size_gigabytes": image.size_gigabytes,
        "description": "",
        "tags": [],
        "status": "available",
        "error_message": "",
    })
}

/// `GET /v2/regions`.
pub(crate) async fn list_regions(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let items = REGIONS.iter().map(region_json).collect();
    let page = Page::from_query(&query);
    Json(list_body("regions", items, page, &shared.base_url, "/v2/regions", &[]))
}

/// `GET /v2/sizes`.
pub(crate) async fn list_sizes(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let items = SIZES.iter().map(size_json).collect();
    let page = Page::from_query(&query);
    Json(list_body("sizes", items, page, &shared.base_url, "/v2/sizes", &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_plan_is_not_everywhere() {
        let small = size("s-1vcpu-512mb-10gb").expect("in the catalogue");
        assert!(!offered_in(small, region("sfo2").expect("in the catalogue")));
        assert!(offered_in(small, region("fra1").expect("in the catalogue")));
        let basic = size("s-1vcpu-1gb").expect("in the catalogue");
        assert!(!offered_in(basic, region("nyc2").expect("in the catalogue")));
    }

    #[test]
    fn hourly_price_follows_the_monthly_one() {
        let json = size_json(size("s-1vcpu-1gb").expect("in the catalogue"));
        assert_eq!(json["price_hourly"], json!(0.00893));
    }
}
