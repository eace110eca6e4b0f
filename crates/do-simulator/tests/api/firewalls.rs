//! Firewalls: create/read/update/delete round trips and rule validation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{assert_error, id_of, start_default};

fn rules() -> Value {
    json!({
        "name": "web-fw",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["203.0.113.7/32"]}},
            {"protocol": "tcp", "ports": "80", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
            {"protocol": "icmp", "sources": {"tags": ["web"]}},
        ],
        "outbound_rules": [
            {
                "protocol": "tcp",
                "ports": "all",
                "destinations": {"addresses": ["0.0.0.0/0", "::/0"]},
            },
            {"protocol": "udp", "ports": "53", "destinations": {"addresses": ["0.0.0.0/0"]}},
        ],
    })
}

#[tokio::test]
async fn create_then_update_round_trips() {
    let api = start_default();
    let droplet = id_of(&api.create_droplet("guarded", json!({})).await);
    let mut body = rules();
    body["droplet_ids"] = json!([droplet]);
    body["tags"] = json!(["web"]);
    let created = api.post("/v2/firewalls", body).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{:?}", created.body);
    let firewall = &created.body["firewall"];
    let id = firewall["id"].as_str().expect("a string id").to_owned();
    assert_eq!(id.len(), 36, "a UUID");
    assert_eq!(firewall["droplet_ids"], json!([droplet]));
    assert_eq!(firewall["tags"], json!(["web"]));
    assert_eq!(firewall["pending_changes"], json!([]));
    assert_eq!(
        firewall["inbound_rules"][0],
        json!({
            "protocol": "tcp", "ports": "22", "sources": {"addresses": ["203.0.113.7/32"]},
        })
    );
    assert_eq!(firewall["inbound_rules"][2]["ports"], "0", "ICMP rules show port 0");
    assert_eq!(firewall["outbound_rules"][0]["ports"], "0", "\"all\" is shown as 0");

    let fetched = api.get(&format!("/v2/firewalls/{id}")).await;
    assert_eq!(fetched.body["firewall"], *firewall);

    let update = json!({
        "name": "web-fw-2",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "8000-9000", "sources": {"droplet_ids": [droplet]}},
        ],
        "droplet_ids": [],
        "tags": ["web", "env:prod"],
    });
    let updated = api.put(&format!("/v2/firewalls/{id}"), update).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let after = api.get(&format!("/v2/firewalls/{id}")).await.body["firewall"].clone();
    assert_eq!(after, updated.body["firewall"]);
    assert_eq!(after["name"], "web-fw-2");
    assert_eq!(
        after["inbound_rules"],
        json!([
            {"protocol": "tcp", "ports": "8000-9000", "sources": {"droplet_ids": [droplet]}},
        ])
    );
    assert_eq!(after["outbound_rules"], json!([]), "PUT replaces what it omits");
    assert_eq!(after["droplet_ids"], json!([]));
    assert_eq!(after["tags"], json!(["web", "env:prod"]));

    let info = api.sim.firewalls();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].name, "web-fw-2");
    assert_eq!(info[0].inbound_rules[0].ports, "8000-9000");

    let listed = api.get("/v2/firewalls").await;
    assert_eq!(listed.body["meta"]["total"], 1);
    assert_eq!(api.delete(&format!("/v2/firewalls/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.get(&format!("/v2/firewalls/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn invalid_rules_are_refused_with_400() {
    let api = start_default();
    let mutations: [(&str, Value); 7] = [
        ("/inbound_rules/0/protocol", json!("sctp")),
        ("/inbound_rules/0/ports", json!("70000")),
        ("/inbound_rules/0/ports", json!("90-80")),
        ("/inbound_rules/0/ports", json!("")),
        ("/inbound_rules/0/sources", json!({})),
        ("/inbound_rules/1/sources/addresses/0", json!("not-an-ip")),
        ("/name", json!("bad name")),
    ];
    for (pointer, value) in mutations {
        let mut body = rules();
        *body.pointer_mut(pointer).expect("the field exists") = value.clone();
        let reply = api.post("/v2/firewalls", body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "bad_request");
    }
    let no_rules = api.post("/v2/firewalls", json!({"name": "empty"})).await;
    assert_error(&no_rules, StatusCode::BAD_REQUEST, "bad_request");
    assert!(api.sim.firewalls().is_empty());
}

#[tokio::test]
async fn destroying_a_droplet_detaches_it() {
    let api = start_default();
    let droplet = id_of(&api.create_droplet("temp", json!({})).await);
    let mut body = rules();
    body["droplet_ids"] = json!([droplet]);
    let id = api.post("/v2/firewalls", body).await.body["firewall"]["id"].clone();
    api.delete(&format!("/v2/droplets/{droplet}")).await;
    let after = api.get(&format!("/v2/firewalls/{}", id.as_str().expect("a string"))).await;
    assert_eq!(after.body["firewall"]["droplet_ids"], json!([]));
}
