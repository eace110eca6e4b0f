use super::*;

fn droplet(ip: &str, role: Role, monitors: &[&str]) -> DropletRecord {
    DropletRecord {
        id: format!("id-{ip}"),
        ip: ip.into(),
        role,
        size: "s-1vcpu-1gb".into(),
        region: "nyc3".into(),
        monitors: monitors.iter().map(|m| m.to_string()).collect(),
        agent_port: 7700,
        status: DropletStatus::Active,
    }
}

fn web_service(port: u16, droplets: &[&str]) -> ServiceRecord {
    ServiceRecord {
        port: Some(port),
        assigned_droplets: droplets.iter().map(|d| d.to_string()).collect(),
        kind: ServiceKind::Web,
    }
}

fn example() -> State {
    let mut state = State::default();
    state.add_droplet("master", droplet("10.0.0.1", Role::Master, &["web1", "web2"]));
    state.add_droplet("web1", droplet("10.0.0.2", Role::Web, &["master", "web2"]));
    state.add_droplet("web2", droplet("10.0.0.3", Role::Web, &["master", "web1"]));
    state.add_project_service("hostomatic-prod", "backend", web_service(8001, &["web1", "web2"]));
    state.add_project_service(
        "hostomatic-prod",
        "worker_email",
        ServiceRecord {
            port: None,
            assigned_droplets: vec!["web1".into(), "web2".into()],
            kind: ServiceKind::Worker,
        },
    );
    state.add_project_service("digitalpixo-prod", "backend", web_service(8002, &["master"]));
    state
}

#[test]
fn getters_follow_roles_and_names() {
    let state = example();
    assert_eq!(state.master().map(|m| m.ip.as_str()), Some("10.0.0.1"));
    assert_eq!(state.web_droplets().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["web1", "web2"]);
    assert_eq!(state.droplets_by_role(Role::Master).len(), 1);
    assert_eq!(state.droplet("web2").map(|d| d.ip.as_str()), Some("10.0.0.3"));
}

#[test]
fn services_are_found_per_droplet_and_named_by_project_env() {
    let state = example();
    assert_eq!(
        state.services_on_droplet("web1"),
        ["hostomatic-prod-backend", "hostomatic-prod-worker_email"]
    );
    assert_eq!(state.services_on_droplet("master"), ["digitalpixo-prod-backend"]);
    assert_eq!(State::service_name("hostomatic-prod", "backend"), "hostomatic-prod-backend");
}

#[test]
fn load_balancer_targets_skip_workers() {
    let state = example();
    assert_eq!(
        state.load_balancer_targets("hostomatic-prod", "backend"),
        ["10.0.0.2:8001", "10.0.0.3:8001"]
    );
    assert!(state.load_balancer_targets("hostomatic-prod", "worker_email").is_empty());
    assert!(state.load_balancer_targets("nothing-prod", "backend").is_empty());
}

#[test]
fn monitors_are_inverted() {
    assert_eq!(example().monitored_by("web1"), ["master", "web2"]);
}

#[test]
fn updating_an_ip_changes_the_targets() {
    let mut state = example();
    assert!(state.update_droplet_ip("web1", "10.0.0.9"));
    assert!(!state.update_droplet_ip("web9", "10.0.0.9"));
    assert_eq!(state.load_balancer_targets("hostomatic-prod", "backend")[0], "10.0.0.9:8001");
}

#[test]
fn removing_the_last_service_removes_the_project_env() {
    let mut state = example();
    assert!(state.remove_project_service("digitalpixo-prod", "backend").is_some());
    assert!(state.project_services("digitalpixo-prod").is_none());
}

#[test]
fn a_consistent_state_has_no_issues() {
    assert_eq!(example().validate(), Vec::<String>::new());
    assert_eq!(example().summary().services, 3);
}

#[test]
fn validation_finds_missing_droplets_and_port_clashes() {
    let mut state = example();
    state.remove_droplet("web2");
    state.add_project_service("other-prod", "backend", web_service(8001, &["web1"]));
    let issues = state.validate();
    assert!(
        issues.contains(&"droplet master monitors web2, which is not in the fleet".to_string()),
        "{issues:?}"
    );
    assert!(
        issues.contains(
            &"service hostomatic-prod-backend is assigned to web2, which is not in the fleet"
                .to_string()
        )
    );
    assert!(
        issues.contains(
            &"services hostomatic-prod-backend and other-prod-backend both use port 8001 on web1"
                .to_string()
        )
    );
}

#[test]
fn heartbeat_updates_leave_unnamed_settings_alone() {
    let mut state = example();
    state.update_heartbeat_config(Some("master".into()), None, Some(5));
    assert_eq!(state.heartbeat().primary_sender.as_deref(), Some("master"));
    assert_eq!(state.heartbeat().interval_minutes, 5);
    assert!(state.heartbeat().backup_senders.is_empty());
}

#[test]
fn the_description_shape_round_trips() {
    let state = example();
    let text = serde_json::to_string_pretty(&state).expect("serialises");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["droplets"]["web1"]["role"], "web");
    assert_eq!(value["projects"]["hostomatic-prod"]["backend"]["port"], 8001);
    assert_eq!(value["projects"]["hostomatic-prod"]["backend"]["assigned_droplets"][1], "web2");
    assert_eq!(serde_json::from_str::<State>(&text).expect("parses"), state);
}
