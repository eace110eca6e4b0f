//! The local provider on its own: droplets, snapshots and restores, through its API.

use std::path::Path;

use fleet::{DropletStatus, Role};
use orchestrator::provider::local::LocalCloud;
use orchestrator::provider::{DropletSpec, Provider};

use crate::common::BINARY;

fn spec(name: &str) -> DropletSpec {
    DropletSpec {
        name: name.into(),
        role: Role::Web,
        size: "s-1vcpu-1gb".into(),
        region: "nyc3".into(),
        agent_port: 7700,
    }
}

struct Cloud {
    cloud: LocalCloud,
    _dir: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.cloud.kill_all();
    }
}

fn cloud() -> Cloud {
    let dir = tempfile::tempdir().expect("tempdir");
    let cloud =
        LocalCloud::new(&dir.path().join(".local-cloud"), Path::new(BINARY), None).expect("opens");
    Cloud { cloud, _dir: dir }
}

#[tokio::test(flavor = "multi_thread")]
async fn droplets_are_created_listed_and_destroyed() {
    let c = cloud();
    let web1 = c.cloud.create(&spec("web1")).await.expect("creates");
    assert_eq!(web1.status, DropletStatus::Active);
    assert!(web1.ip.as_deref().is_some_and(|ip| ip.starts_with("127.")));
    assert_eq!(c.cloud.list().await.expect("lists"), std::slice::from_ref(&web1));
    c.cloud.destroy(&web1).await.expect("destroys");
    assert!(c.cloud.list().await.expect("lists").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_powered_off_droplet_is_listed_as_off() {
    let c = cloud();
    let web1 = c.cloud.create(&spec("web1")).await.expect("creates");
    c.cloud.power_off(&web1).await.expect("stops");
    assert_eq!(c.cloud.list().await.expect("lists")[0].status, DropletStatus::Off);
    let again = c.cloud.power_on(&web1).await.expect("starts");
    assert_eq!(again.status, DropletStatus::Active);
    assert_eq!(again.ip, web1.ip);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_restores_the_disk_on_a_new_address() {
    let c = cloud();
    let web1 = c.cloud.create(&spec("web1")).await.expect("creates");
    let data = c.cloud.root().join("droplets").join(&web1.id).join("data");
    std::fs::write(data.join("orders.db"), "order 1\n").expect("writes");

    let snapshot = c.cloud.snapshot(&web1).await.expect("snapshots");
    assert_eq!(snapshot.droplet_name, "web1");
    assert!(snapshot.size_bytes > 0);
    assert_eq!(c.cloud.snapshots().await.expect("lists"), std::slice::from_ref(&snapshot));

    c.cloud.destroy(&web1).await.expect("destroys");
    let restored = c.cloud.restore(&snapshot, &spec("web1")).await.expect("restores");
    assert_ne!(restored.id, web1.id);
    assert_eq!(restored.status, DropletStatus::Active);
    let restored_data = c.cloud.root().join("droplets").join(&restored.id).join("data/orders.db");
    assert_eq!(std::fs::read_to_string(restored_data).expect("restored"), "order 1\n");

    c.cloud.delete_snapshot(&snapshot).await.expect("deletes");
    assert!(c.cloud.snapshots().await.expect("lists").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_get_distinct_addresses() {
    let c = std::sync::Arc::new(cloud());
    let mut tasks = Vec::new();
    for index in 1..=6 {
        let c = std::sync::Arc::clone(&c);
        tasks
            .push(tokio::spawn(async move { c.cloud.create(&spec(&format!("web{index}"))).await }));
    }
    let mut addresses = Vec::new();
    for task in tasks {
        addresses.push(task.await.expect("joins").expect("creates").ip.expect("an address"));
    }
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 6);
}
