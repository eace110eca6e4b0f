//! Droplet actions: power, resize, snapshot and restore, errored actions.

use reqwest::StatusCode;
use serde_json::json;

use do_simulator::DropletStatus;

use crate::common::{assert_error, id_of, start_default};

#[tokio::test]
async fn resize_is_refused_while_on_and_applies_once_off() {
    let api = start_default();
    let id = id_of(&api.create_droplet("sizer", json!({})).await);
    assert_eq!(api.droplet(id).await["status"], "active");

    let path = format!("/v2/droplets/{id}/actions");
    let refused = api.post(&path, json!({"type": "resize", "size": "s-2vcpu-4gb"})).await;
    assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
    assert_eq!(
        refused.body["message"],
        "Droplet is currently on. Please power it off to run this event."
    );

    let off = api.act(id, json!({"type": "power_off"})).await;
    assert_eq!(off["resource_type"], "droplet");
    assert_eq!(api.settle(id_of(&off)).await["status"], "completed");
    assert_eq!(api.droplet(id).await["status"], "off");
    let again = api.post(&path, json!({"type": "power_off"})).await;
    assert_error(&again, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");

    let resize = api.act(id, json!({"type": "resize", "size": "s-2vcpu-4gb"})).await;
    assert_eq!(resize["type"], "resize");
    assert_eq!(api.settle(id_of(&resize)).await["status"], "completed");
    let droplet = api.droplet(id).await;
    assert_eq!(droplet["size_slug"], "s-2vcpu-4gb");
    assert_eq!(droplet["memory"], 4096);
    assert_eq!(droplet["disk"], 25, "without disk: true the disk keeps its size");
    assert_eq!(droplet["status"], "off", "a resized Droplet stays off");

    let grow = api.act(id, json!({"type": "resize", "size": "s-2vcpu-4gb", "disk": true})).await;
    api.settle(id_of(&grow)).await;
    assert_eq!(api.droplet(id).await["disk"], 80);
    let shrink = api.post(&path, json!({"type": "resize", "size": "s-1vcpu-1gb"})).await;
    assert_error(&shrink, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");

    let on = api.act(id, json!({"type": "power_on"})).await;
    api.settle(id_of(&on)).await;
    assert_eq!(api.sim.droplets()[0].status, DropletStatus::Active);

    let listed = api.get(&path).await;
    let types: Vec<&str> = listed.body["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert_eq!(types, ["create", "power_off", "resize", "resize", "power_on"]);
}

#[tokio::test]
async fn snapshot_then_restore_from_it() {
    let api = start_default();
    let source = id_of(&api.create_droplet("golden", json!({"region": "ams3"})).await);
    let action = api.act(source, json!({"type": "snapshot", "name": "golden-image"})).await;
    assert_eq!(api.settle(id_of(&action)).await["status"], "completed");

    let per_droplet = api.get(&format!("/v2/droplets/{source}/snapshots")).await;
    assert_eq!(per_droplet.body["meta"]["total"], 1);
    let image = &per_droplet.body["snapshots"][0];
    let snapshot_id = id_of(image);
    assert_eq!(image["type"], "snapshot");
    assert_eq!(image["name"], "golden-image");
    assert_eq!(api.droplet(source).await["snapshot_ids"], json!([snapshot_id]));

    let all = api.get("/v2/snapshots?resource_type=droplet").await;
    let listed = &all.body["snapshots"][0];
    assert_eq!(listed["id"], snapshot_id.to_string(), "/v2/snapshots types ids as strings");
    assert_eq!(listed["resource_id"], source.to_string());
    assert_eq!(listed["resource_type"], "droplet");
    assert_eq!(listed["regions"], json!(["ams3"]));
    let one = api.get(&format!("/v2/snapshots/{snapshot_id}")).await;
    assert_eq!(one.body["snapshot"]["name"], "golden-image");
    let volumes = api.get("/v2/snapshots?resource_type=volume").await;
    assert_eq!(volumes.body["meta"]["total"], 0);

    let restored =
        api.create_droplet("restored", json!({"region": "ams3", "image": snapshot_id})).await;
    assert_eq!(restored["image"]["id"], snapshot_id);
    assert_eq!(restored["image"]["type"], "snapshot");
    let restored_id = id_of(&restored);
    assert_eq!(api.droplet(restored_id).await["status"], "active");
    let info = api.sim.droplets().into_iter().find(|d| d.id == restored_id).expect("exists");
    assert_eq!(info.image, snapshot_id.to_string());

    let elsewhere = api
        .post(
            "/v2/droplets",
            json!({
                "name": "far", "region": "nyc3", "size": "s-1vcpu-1gb", "image": snapshot_id,
            }),
        )
        .await;
    assert_error(&elsewhere, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");

    let deleted = api.delete(&format!("/v2/snapshots/{snapshot_id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(api.sim.snapshots().is_empty());
    let gone = api
        .post(
            "/v2/droplets",
            json!({
                "name": "late", "region": "ams3", "size": "s-1vcpu-1gb", "image": snapshot_id,
            }),
        )
        .await;
    assert_error(&gone, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
}

#[tokio::test]
async fn an_errored_action_has_no_effect() {
    let api = start_default();
    let id = id_of(&api.create_droplet("stubborn", json!({})).await);
    api.sim.fail_next_action("power_off");
    let first = api.act(id, json!({"type": "power_off"})).await;
    assert_eq!(api.settle(id_of(&first)).await["status"], "errored");
    assert_eq!(api.droplet(id).await["status"], "active");
    let second = api.act(id, json!({"type": "power_off"})).await;
    assert_eq!(api.settle(id_of(&second)).await["status"], "completed");
    assert_eq!(api.droplet(id).await["status"], "off");
}

#[tokio::test]
async fn unknown_actions_and_droplets_are_refused() {
    let api = start_default();
    let id = id_of(&api.create_droplet("x", json!({})).await);
    let path = format!("/v2/droplets/{id}/actions");
    let bogus = api.post(&path, json!({"type": "teleport"})).await;
    assert_error(&bogus, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
    let missing = api.post("/v2/droplets/1/actions", json!({"type": "reboot"})).await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    assert_error(&api.get("/v2/actions/1").await, StatusCode::NOT_FOUND, "not_found");
}
