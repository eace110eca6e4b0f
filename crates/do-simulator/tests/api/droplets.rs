//! Droplet creation, validation, listing and pagination, destruction.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{assert_error, id_of, start_default};

#[tokio::test]
async fn create_answers_202_new_without_networks_and_a_create_action_link() {
    let api = start_default();
    let key = api
        .post(
            "/v2/account/keys",
            json!({
                "name": "laptop",
                "public_key": "ssh-ed25519 \
                    AAAAC3NzaC1lZDI1NTE5AAAAIFCzw+rIctonAhxd2zbVr9UbBOTx3MWq4mc0gmPLNcfz a@b",
            }),
        )
        .await;
    let key_id = id_of(&key.body["ssh_key"]);
    let reply = api
        .post(
            "/v2/droplets",
            json!({
                "name": "web-1",
                "region": "fra1",
                "size": "s-2vcpu-4gb",
                "image": "ubuntu-24-04-x64",
                "ssh_keys": [key_id],
                "tags": ["env:prod", "web"],
                "user_data": "#cloud-config\n",
                "ipv6": true,
                "monitoring": true,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let droplet = &reply.body["droplet"];
    assert_eq!(droplet["status"], "new");
    assert_eq!(droplet["networks"], json!({"v4": [], "v6": []}));
    assert_eq!(droplet["size_slug"], "s-2vcpu-4gb");
    assert_eq!((droplet["memory"].as_u64(), droplet["vcpus"].as_u64()), (Some(4096), Some(2)));
    assert_eq!(droplet["region"]["slug"], "fra1");
    assert_eq!(droplet["image"]["slug"], "ubuntu-24-04-x64");
    assert_eq!(droplet["tags"], json!(["env:prod", "web"]));
    let action = &reply.body["links"]["actions"][0];
    assert_eq!(action["rel"], "create");
    let action_id = action["id"].as_u64().expect("an integer action id");
    assert_eq!(action["href"], format!("{}/v2/actions/{action_id}", api.sim.base_url()));
    let settled = api.settle(action_id).await;
    assert_eq!(settled["status"], "completed");
    assert_eq!(settled["type"], "create");
    assert_eq!(settled["resource_id"], droplet["id"]);

    let info = &api.sim.droplets()[0];
    assert_eq!(info.ssh_key_ids, vec![key_id]);
    assert_eq!(info.user_data.as_deref(), Some("#cloud-config\n"));
    assert_eq!(info.tags, vec!["env:prod", "web"]);
}

#[tokio::test]
async fn create_validates_its_input_with_422() {
    let api = start_default();
    let good =
        json!({"name": "ok", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-12-x64"});
    let cases = [
        ("name", json!("bad_name")),
        ("name", Value::Null),
        ("region", json!("mars1")),
        ("region", json!("nyc2")),
        ("size", json!("s-99vcpu")),
        ("image", json!("windows-95")),
        ("image", json!(424_242)),
        ("ssh_keys", json!([12345])),
        ("tags", json!(["no spaces"])),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let reply = api.post("/v2/droplets", body).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
        assert!(reply.header("ratelimit-limit").is_some(), "{field}={value}");
    }
    let mut small = good.clone();
    small["size"] = json!("s-1vcpu-512mb-10gb");
    small["region"] = json!("sfo2");
    let reply = api.post("/v2/droplets", small).await;
    assert_eq!(reply.body["message"], "Size is not available in this region.");
    let not_json =
        api.send(reqwest::Method::POST, "/v2/droplets", Some(json!("x")), Some("test-token")).await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "bad_request");
    assert!(api.sim.droplets().is_empty());
}

#[tokio::test]
async fn lists_250_droplets_through_pagination_links() {
    let api = start_default();
    for i in 0..250 {
        let tags = if i % 2 == 0 { json!(["even"]) } else { json!([]) };
        api.create_droplet(&format!("node-{i}"), json!({"tags": tags})).await;
    }

    let mut seen = Vec::new();
    let mut next = Some("/v2/droplets".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let reply = api.get(&url).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["meta"]["total"], 250);
        let links = &reply.body["links"]["pages"];
        if pages == 0 {
            assert!(links.get("first").is_none() && links.get("prev").is_none());
            assert!(links["last"].as_str().is_some_and(|l| l.contains("page=13")), "{links}");
        } else {
            assert!(links["prev"].is_string() && links["first"].is_string());
        }
        let droplets = reply.body["droplets"].as_array().expect("an array");
        assert!(droplets.len() <= 20);
        seen.extend(droplets.iter().map(id_of));
        next = links["next"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 13);
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);

    let big = api.get("/v2/droplets?per_page=500").await;
    assert_eq!(big.body["droplets"].as_array().map(Vec::len), Some(200), "per_page is capped");

    // A filter is kept in the links, so following them stays within the selection.
    let mut tagged = 0;
    let mut next = Some("/v2/droplets?tag_name=even&per_page=50".to_owned());
    while let Some(url) = next {
        let reply = api.get(&url).await;
        assert_eq!(reply.body["meta"]["total"], 125);
        tagged += reply.body["droplets"].as_array().map_or(0, Vec::len);
        next = reply.body["links"]["pages"]["next"].as_str().map(str::to_owned);
        if let Some(url) = &next {
            assert!(url.contains("tag_name=even"), "{url}");
        }
    }
    assert_eq!(tagged, 125);
    let by_name = api.get("/v2/droplets?name=node-7").await;
    assert_eq!(by_name.body["meta"]["total"], 1);
}

#[tokio::test]
async fn every_address_handed_out_is_loopback() {
    let api = start_default();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(id_of(&api.create_droplet(&format!("lo-{i}"), json!({"ipv6": true})).await));
    }
    let mut publics = HashSet::new();
    for id in ids {
        let droplet = api.droplet(id).await;
        assert_eq!(droplet["status"], "active");
        let v4 = droplet["networks"]["v4"].as_array().expect("v4 networks");
        assert_eq!(v4.len(), 2);
        for network in v4 {
            for field in ["ip_address", "gateway"] {
                let ip: Ipv4Addr =
                    network[field].as_str().and_then(|a| a.parse().ok()).expect("an IPv4 address");
                assert!(ip.is_loopback(), "{field} {ip} is not in 127.0.0.0/8");
            }
            if network["type"] == "public" {
                assert!(publics.insert(network["ip_address"].to_string()), "address reused");
            }
        }
        assert_eq!(droplet["networks"]["v6"], json!([]));
    }
    for info in api.sim.droplets() {
        assert!(info.public_ipv4.is_loopback() && info.private_ipv4.is_loopback());
    }
}

#[tokio::test]
async fn destroy_one_and_destroy_by_tag() {
    let api = start_default();
    let keep = id_of(&api.create_droplet("keep", json!({})).await);
    let gone = id_of(&api.create_droplet("gone", json!({})).await);
    for i in 0..3 {
        api.create_droplet(&format!("batch-{i}"), json!({"tags": ["batch"]})).await;
    }
    assert_eq!(api.delete(&format!("/v2/droplets/{gone}")).await.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.get(&format!("/v2/droplets/{gone}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.delete(&format!("/v2/droplets/{gone}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(api.delete("/v2/droplets?tag_name=batch").await.status, StatusCode::NO_CONTENT);
    let left: Vec<u64> = api.sim.droplets().iter().map(|d| d.id).collect();
    assert_eq!(left, vec![keep]);
    assert_error(&api.get("/v2/droplets/not-a-number").await, StatusCode::NOT_FOUND, "not_found");
}
