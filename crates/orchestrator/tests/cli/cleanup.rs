//! `--cleanup` on the local cloud: old snapshots and orphan droplets.

use std::path::Path;

use fleet::Role;
use orchestrator::provider::local::LocalCloud;
use orchestrator::provider::{DropletSpec, Provider};

use crate::common::{BINARY, TestFleet};

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_lists_then_removes_old_snapshots_and_orphans() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let cloud = LocalCloud::new(&fleet.path().join(".local-cloud"), Path::new(BINARY), None)
        .expect("opens");
    let master = cloud
        .list()
        .await
        .expect("lists")
        .into_iter()
        .find(|d| d.name == "master")
        .expect("master");
    // --orchestrate took a first snapshot of each droplet; three more of master make four.
    for _ in 0..3 {
        cloud.snapshot(&master).await.expect("snapshots");
    }
    let orphan = DropletSpec {
        name: "web7".into(),
        role: Role::Web,
        size: "s-1vcpu-1gb".into(),
        region: "nyc3".into(),
        agent_port: 7700,
    };
    cloud.create(&orphan).await.expect("creates");

    let before = fleet.files();
    let listed = fleet.json(&["--cleanup", "--dry-run"]);
    let kinds: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["snapshot", "droplet"], "{listed}");
    assert!(
        listed["items"][0]["reason"]
            .as_str()
            .expect("a reason")
            .contains("older than the newest 3 of master")
    );
    assert!(listed["items"][1]["name"].as_str().expect("a name").starts_with("web7"));
    crate::common::assert_unchanged(&before, &fleet.files());

    assert!(fleet.fails(&["--cleanup"]).contains("re-run with --yes"));
    let done = fleet.json(&["--cleanup", "--yes"]);
    assert_eq!(done["removed"].as_array().expect("removed").len(), 2);
    assert_eq!(
        cloud.snapshots().await.expect("lists").len(),
        3 + 2,
        "three of master, one each of web1 and web2"
    );
    assert!(cloud.list().await.expect("lists").iter().all(|d| d.name != "web7"));
    assert_eq!(fleet.json(&["--cleanup", "--dry-run"])["items"], serde_json::json!([]));

    // Once the fleet is stopped, its snapshots go too, when asked.
    fleet.write("config/projects.csv", "Project,Servers,MasterSpec,WebSpec\n");
    fleet.ok(&["--orchestrate", "--yes"]);
    let listed = fleet.json(&["--cleanup", "--dry-run"]);
    let reasons = listed["items"].to_string();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(5), "{reasons}");
    assert!(reasons.contains("of master, which the fleet no longer has"), "{reasons}");
    fleet.ok(&["--cleanup", "--yes"]);
    assert!(cloud.snapshots().await.expect("lists").is_empty());
}
