use super::*;
use crate::deploy_config::{self, DeploymentConfig};
use crate::projects::ProjectRow;
use std::path::Path;

fn row(name: &str, servers: u32) -> ProjectRow {
    ProjectRow {
        name: name.into(),
        servers,
        master_spec: "s-2vcpu-4gb".into(),
        web_spec: "s-2vcpu-4gb".into(),
        line: 2,
    }
}

fn config() -> DeploymentConfig {
    let text = r#"{"projects": {
        "hostomatic": {"services": {"backend": {}, "frontend": {}, "worker_email": {"type": "worker"}}},
        "digitalpixo": {"services": {"backend": {}}}}}"#;
    deploy_config::parse(Path::new("d.json"), text).expect("valid")
}

fn example() -> DesiredFleet {
    DesiredFleet::from_config(&[row("hostomatic", 3), row("digitalpixo", 1)], &config())
}

/// What the cloud would report after applying `plan` to nothing.
fn observe(desired: &DesiredFleet) -> Vec<ObservedDroplet> {
    desired
        .droplets
        .iter()
        .enumerate()
        .map(|(index, d)| ObservedDroplet {
            id: format!("{}", 100 + index),
            name: d.name.clone(),
            role: d.role,
            size: d.size.clone(),
            region: d.region.clone(),
            ip: Some(format!("127.0.0.{}", index + 2)),
            agent_port: 7700,
            status: DropletStatus::Active,
        })
        .collect()
}

fn applied(desired: &DesiredFleet) -> (Vec<ObservedDroplet>, State) {
    let first = plan(desired, &[], &State::default(), false).expect("plans");
    let observed = observe(desired);
    let state = first.state_after(&observed, &State::default(), "local");
    (observed, state)
}

fn verbs(plan: &Plan) -> Vec<String> {
    plan.actions.iter().map(|a| format!("{} {}", a.verb(), a.target())).collect()
}

#[test]
fn an_empty_cloud_plans_every_droplet_and_service() {
    let plan = plan(&example(), &[], &State::default(), false).expect("plans");
    let droplet_verbs: Vec<String> =
        verbs(&plan).into_iter().filter(|v| v.starts_with("create")).collect();
    assert_eq!(droplet_verbs, ["create master", "create web1", "create web2"]);
    assert_eq!(plan.actions.iter().filter(|a| a.verb() == "place").count(), 8);
    assert!(!plan.is_destructive());
}

#[test]
fn unchanged_csv_plans_nothing() {
    let desired = example();
    let (observed, state) = applied(&desired);
    let again = plan(&desired, &observed, &state, false).expect("plans");
    assert!(again.is_empty(), "{:?}", again.actions);
    assert_eq!(again.services, state.projects);
}

#[test]
fn the_example_places_backend_on_both_web_droplets() {
    let (_, state) = applied(&example());
    let backend = &state.projects["hostomatic-prod"]["backend"];
    assert_eq!(backend.assigned_droplets, ["web1", "web2"]);
    assert!(backend.port.is_some());
    assert_eq!(state.projects["hostomatic-prod"]["worker_email"].port, None);
    assert_eq!(state.projects["digitalpixo-prod"]["backend"].assigned_droplets, ["master"]);
    assert_eq!(state.droplets["web1"].monitors, ["master", "web2"]);
    assert_eq!(state.heartbeat.primary_sender.as_deref(), Some("master"));
    assert_eq!(state.heartbeat.backup_senders, ["web1", "web2"]);
    assert_eq!(state.validate(), Vec::<String>::new());
}

#[test]
fn scaling_up_creates_only_the_new_droplets_and_moves_services() {
    let (observed, state) = applied(&example());
    let bigger =
        DesiredFleet::from_config(&[row("hostomatic", 5), row("digitalpixo", 1)], &config());
    let plan = plan(&bigger, &observed, &state, false).expect("plans");
    let creates: Vec<String> =
        verbs(&plan).into_iter().filter(|v| v.starts_with("create")).collect();
    assert_eq!(creates, ["create web3", "create web4"]);
    assert!(plan.actions.iter().all(|a| !matches!(a, Action::PlaceService { .. })));
    let backend = &plan.services["hostomatic-prod"]["backend"];
    assert_eq!(backend.assigned_droplets, ["web1", "web2", "web3", "web4"]);
    assert_eq!(backend.port, state.projects["hostomatic-prod"]["backend"].port);
}

#[test]
fn scaling_down_destroys_and_is_destructive() {
    let (observed, state) = applied(&example());
    let smaller =
        DesiredFleet::from_config(&[row("hostomatic", 2), row("digitalpixo", 1)], &config());
    let plan = plan(&smaller, &observed, &state, false).expect("plans");
    assert_eq!(verbs(&plan)[0], "destroy web2");
    assert!(plan.is_destructive());
}

#[test]
fn a_header_only_csv_destroys_everything() {
    let (observed, state) = applied(&example());
    let plan =
        plan(&DesiredFleet::from_config(&[], &config()), &observed, &state, false).expect("plans");
    let destroys: Vec<String> =
        verbs(&plan).into_iter().filter(|v| v.starts_with("destroy")).collect();
    assert_eq!(destroys, ["destroy master", "destroy web1", "destroy web2"]);
    assert_eq!(plan.actions.iter().filter(|a| a.verb() == "remove").count(), 8);
}

#[test]
fn a_bigger_spec_resizes_in_place() {
    let (observed, state) = applied(&example());
    let mut rows = [row("hostomatic", 3), row("digitalpixo", 1)];
    rows[1].master_spec = "s-4vcpu-8gb".into();
    let plan = plan(&DesiredFleet::from_config(&rows, &config()), &observed, &state, false)
        .expect("plans");
    assert_eq!(
        plan.actions,
        [Action::ResizeDroplet {
            name: "master".into(),
            id: "100".into(),
            from: "s-2vcpu-4gb".into(),
            to: "s-4vcpu-8gb".into()
        }]
    );
}

#[test]
fn a_stopped_droplet_is_started_not_recreated() {
    let (mut observed, state) = applied(&example());
    observed[1].status = DropletStatus::Off;
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    assert_eq!(plan.actions, [Action::StartDroplet { name: "web1".into(), id: "101".into() }]);
}

#[test]
fn a_duplicate_left_by_a_crash_is_destroyed_and_the_original_kept() {
    let (mut observed, state) = applied(&example());
    let mut duplicate = observed[2].clone();
    duplicate.id = "999".into();
    observed.push(duplicate);
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    assert_eq!(
        plan.actions,
        [Action::DestroyDroplet {
            name: "web2".into(),
            id: "999".into(),
            ip: Some("127.0.0.4".into()),
            reason: DestroyReason::Duplicate
        }]
    );
}

#[test]
fn force_replaces_every_droplet() {
    let (observed, state) = applied(&example());
    let plan = plan(&example(), &observed, &state, true).expect("plans");
    assert_eq!(verbs(&plan), ["replace master", "replace web1", "replace web2"]);
    assert!(plan.is_destructive());
}

#[test]
fn colliding_hashes_get_distinct_ports_deterministically() {
    // Two projects, one service each, forced onto the same base so their ranges overlap fully;
    // with a range of one port every project-environment hashes to the same candidate.
    let text = r#"{"environments": ["prod", "uat", "test"], "projects": {
        "alpha": {"services": {"api": {"base_port": 20000}}},
        "beta": {"services": {"api": {"base_port": 20000}}}}}"#;
    let config = deploy_config::parse(Path::new("d.json"), text).expect("valid");
    let desired = DesiredFleet::from_config(&[row("alpha", 2), row("beta", 2)], &config);
    let first = plan(&desired, &[], &State::default(), false).expect("plans");
    let second = plan(&desired, &[], &State::default(), false).expect("plans");
    assert_eq!(first.services, second.services);
    let mut ports: Vec<u16> =
        first.services.values().flat_map(|s| s.values().filter_map(|r| r.port)).collect();
    let count = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), count, "every service on web1 has its own port");
}

#[test]
fn every_pair_of_colliding_candidates_is_separated() {
    // Find two project names whose prod candidates meet, and check they are told apart.
    let base = 30000;
    let mut seen: HashMap<u16, String> = HashMap::new();
    let (a, b) = (0..10_000)
        .map(|i| format!("p{i}"))
        .find_map(|name| {
            let port = ports::hash_port(&name, "prod", base, ports::PORT_RANGE);
            seen.insert(port, name.clone()).map(|other| (other, name))
        })
        .expect("a collision among 10,000 names in a range of 1,000");
    let text = format!(
        r#"{{"environments": ["prod"], "projects": {{"{a}": {{"services": {{"api": {{"base_port": {base}}}}}}}, "{b}": {{"services": {{"api": {{"base_port": {base}}}}}}}}}}}"#
    );
    let config = deploy_config::parse(Path::new("d.json"), &text).expect("valid");
    let desired = DesiredFleet::from_config(&[row(&a, 1), row(&b, 1)], &config);
    let plan = plan(&desired, &[], &State::default(), false).expect("plans");
    let port_a = plan.services[&format!("{a}-prod")]["api"].port.expect("port");
    let port_b = plan.services[&format!("{b}-prod")]["api"].port.expect("port");
    let candidate = ports::hash_port(&a, "prod", base, ports::PORT_RANGE);
    assert_eq!((port_a.min(port_b), port_a.max(port_b)), (candidate, candidate + 1));
}

#[test]
fn adding_a_project_never_moves_an_existing_port() {
    let (observed, state) = applied(&example());
    let mut config = config();
    config.projects.insert("zeta".into(), config.projects["hostomatic"].clone());
    let desired = DesiredFleet::from_config(
        &[row("hostomatic", 3), row("digitalpixo", 1), row("zeta", 3)],
        &config,
    );
    let plan = plan(&desired, &observed, &state, false).expect("plans");
    assert!(
        plan.actions.iter().all(|a| !matches!(a, Action::MoveService { .. })),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_hand_edited_port_is_overwritten() {
    let (observed, mut state) = applied(&example());
    let honest = state.projects["hostomatic-prod"]["backend"].port;
    state.projects.get_mut("hostomatic-prod").expect("env").get_mut("backend").expect("svc").port =
        Some(1234);
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    assert_eq!(plan.services["hostomatic-prod"]["backend"].port, honest);
}

#[test]
fn a_hand_edit_onto_a_neighbours_port_does_not_move_the_neighbour() {
    let (observed, mut state) = applied(&example());
    let uat = state.projects["hostomatic-uat"]["backend"].port;
    let prod = state.projects["hostomatic-prod"]["backend"].port;
    state.projects.get_mut("hostomatic-prod").expect("env").get_mut("backend").expect("svc").port =
        uat;
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    assert_eq!(plan.services["hostomatic-uat"]["backend"].port, uat);
    assert_eq!(plan.services["hostomatic-prod"]["backend"].port, prod);
}

#[test]
fn a_changed_agent_port_is_reported() {
    let (mut observed, state) = applied(&example());
    observed[0].agent_port = 7701;
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    assert!(
        plan.warnings[0].starts_with("master's agent listens on port 7701 but agent_port is 7700"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_hand_edited_clash_in_the_state_is_resolved() {
    let (observed, mut state) = applied(&example());
    let frontend = state.projects["hostomatic-prod"]["frontend"].port;
    state.projects.get_mut("hostomatic-prod").expect("env").get_mut("backend").expect("svc").port =
        frontend;
    let plan = plan(&example(), &observed, &state, false).expect("plans");
    let services = &plan.services["hostomatic-prod"];
    assert_ne!(services["backend"].port, services["frontend"].port);
}

#[test]
fn the_load_balancer_port_is_never_given_to_a_service() {
    let text = r#"{"load_balancer_port": 8080, "environments": ["prod"], "projects": {
        "alpha": {"services": {"api": {"base_port": 8080}}}}}"#;
    let config = deploy_config::parse(Path::new("d.json"), text).expect("valid");
    let desired = DesiredFleet::from_config(&[row("alpha", 1)], &config);
    let plan = plan(&desired, &[], &State::default(), false).expect("plans");
    assert_ne!(plan.services["alpha-prod"]["api"].port, Some(8080));
}
