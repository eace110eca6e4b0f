//! SSH keys and tags.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{assert_error, id_of, start_default};

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDyBKaMsPYJZU5EAWLOdtQxKKevqdJmf05efHLs4OY7\
    joexlitywy4olIcq2B4VOpsf874dJHYje09ImXLmUnbpT7mfzgb7moATnLq1kTbVRqZEhiZ8kdHhCRhpkp5DUmReZiin\
    viDknfHXU7lkZ7pMwzJTtYrRRlq9omB7COOOgQ== rsa@test";
/// From `ssh-keygen -l -E md5` on the same key.
const FINGERPRINT: &str = "38:43:25:b6:5f:09:1b:47:7a:01:20:89:c9:3f:65:97";

#[tokio::test]
async fn keys_by_id_and_fingerprint() {
    let api = start_default();
    let created = api.post("/v2/account/keys", json!({"name": "ci", "public_key": KEY})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = &created.body["ssh_key"];
    assert_eq!(key["fingerprint"], FINGERPRINT);
    assert_eq!(key["public_key"], KEY);
    let id = id_of(key);

    let duplicate = api.post("/v2/account/keys", json!({"name": "again", "public_key": KEY})).await;
    assert_error(&duplicate, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
    assert_eq!(duplicate.body["message"], "SSH Key is already in use on your account");
    let malformed =
        api.post("/v2/account/keys", json!({"name": "x", "public_key": "ssh-rsa nope"})).await;
    assert_error(&malformed, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");

    assert_eq!(api.get(&format!("/v2/account/keys/{id}")).await.body["ssh_key"]["name"], "ci");
    let by_print = api.get(&format!("/v2/account/keys/{FINGERPRINT}")).await;
    assert_eq!(id_of(&by_print.body["ssh_key"]), id);
    let listed = api.get("/v2/account/keys").await;
    assert_eq!(listed.body["meta"]["total"], 1);
    assert_eq!(api.sim.keys()[0].fingerprint, FINGERPRINT);

    // A Droplet may name its keys by fingerprint too.
    let droplet = api.create_droplet("keyed", json!({"ssh_keys": [FINGERPRINT]})).await;
    let info = api.sim.droplets().into_iter().find(|d| d.id == id_of(&droplet)).expect("exists");
    assert_eq!(info.ssh_key_ids, vec![id]);

    let deleted = api.delete(&format!("/v2/account/keys/{FINGERPRINT}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.get(&format!("/v2/account/keys/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn tags_and_tagging_droplets() {
    let api = start_default();
    let created = api.post("/v2/tags", json!({"name": "Frontend"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["tag"]["resources"]["count"], 0);
    let same = api.post("/v2/tags", json!({"name": "frontend"})).await;
    assert_eq!(same.body["tag"]["name"], "Frontend", "the first capitalisation is canonical");
    let bad = api.post("/v2/tags", json!({"name": "no spaces"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");

    let droplet = id_of(&api.create_droplet("fe-1", json!({})).await);
    let tagged = api
        .post(
            "/v2/tags/Frontend/resources",
            json!({
                "resources": [{"resource_id": droplet.to_string(), "resource_type": "droplet"}],
            }),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::NO_CONTENT);
    let tag = api.get("/v2/tags/Frontend").await;
    assert_eq!(tag.body["tag"]["resources"]["droplets"]["count"], 1);
    assert_eq!(
        tag.body["tag"]["resources"]["droplets"]["last_tagged_uri"],
        format!("{}/v2/droplets/{droplet}", api.sim.base_url())
    );
    assert_eq!(api.droplet(droplet).await["tags"], json!(["Frontend"]));
    assert_eq!(api.get("/v2/droplets?tag_name=Frontend").await.body["meta"]["total"], 1);

    let missing = api
        .post(
            "/v2/tags/nope/resources",
            json!({
                "resources": [{"resource_id": droplet.to_string(), "resource_type": "droplet"}],
            }),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(api.delete("/v2/tags/Frontend").await.status, StatusCode::NO_CONTENT);
    assert_eq!(api.droplet(droplet).await["tags"], json!([]));
}

#[tokio::test]
async fn catalogue_lists_regions_and_sizes() {
    let api = start_default();
    let sizes = api.get("/v2/sizes?per_page=200").await;
    let basic = sizes.body["sizes"]
        .as_array()
        .expect("sizes")
        .iter()
        .find(|s| s["slug"] == "s-1vcpu-1gb")
        .expect("the basic plan is listed")
        .clone();
    assert_eq!(
        (basic["memory"].as_u64(), basic["vcpus"].as_u64(), basic["disk"].as_u64()),
        (Some(1024), Some(1), Some(25))
    );
    assert_eq!(basic["price_monthly"], 6.0);
    assert_eq!(basic["available"], true);
    assert!(basic["regions"].as_array().is_some_and(|r| r.contains(&json!("nyc3"))));
    let regions = api.get("/v2/regions").await;
    let nyc2 = regions.body["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .find(|r| r["slug"] == "nyc2")
        .expect("nyc2 is listed")
        .clone();
    assert_eq!(nyc2["available"], false);
}
