use crate::common::{TestFleet, csv};

#[test]
fn the_example_brings_up_master_web1_web2_each_answering_on_its_own_address() {
    let fleet = TestFleet::example();
    fleet.ok(&["--init"]);
    fleet.ok(&["--orchestrate"]);

    let state = fleet.state();
    assert_eq!(state.droplet_names(), ["master", "web1", "web2"]);
    let addresses: std::collections::BTreeSet<&str> =
        state.droplets.values().map(|d| d.ip.as_str()).collect();
    assert_eq!(addresses.len(), 3, "each droplet has its own address");
    for (name, answer) in fleet.health() {
        assert!(
            answer.contains("\"status\":\"ok\"")
                && answer.contains(&format!("\"droplet\":\"{name}\"")),
            "{name}: {answer}"
        );
    }
    let backend = &state.projects["hostomatic-prod"]["backend"];
    assert_eq!(backend.assigned_droplets, ["web1", "web2"]);
    assert_eq!(state.projects["digitalpixo-prod"]["backend"].assigned_droplets, ["master"]);
    assert_eq!(state.droplets["master"].monitors, ["web1", "web2"]);
    assert_eq!(fleet.agent_pids().len(), 3, "the agents outlive the command");
}

#[test]
fn the_agent_reports_its_status() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let web1 = fleet.state().droplets["web1"].clone();
    let status: serde_json::Value = serde_json::from_str(&crate::common::http_get(&format!(
        "http://{}:{}/status",
        web1.ip, web1.agent_port
    )))
    .expect("json");
    assert_eq!(status["name"], "web1");
    assert_eq!(status["role"], "web");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["pid"].as_u64().is_some_and(|pid| pid > 1));
    assert!(status["uptime_seconds"].is_u64());
}

#[test]
fn a_rerun_of_an_unchanged_csv_plans_nothing_and_keeps_the_state() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.read("config/infrastructure.json");
    let outcome = fleet.json(&["--orchestrate"]);
    assert_eq!(outcome["plan"], serde_json::json!([]));
    assert_eq!(outcome["state_changed"], false);
    assert_eq!(fleet.read("config/infrastructure.json"), before);
}

#[test]
fn scaling_to_five_gives_five_droplets_and_updates_only_that_csv_row() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    fleet.ok(&["--scale", "hostomatic", "5"]);
    assert_eq!(fleet.state().droplet_names(), ["master", "web1", "web2", "web3", "web4"]);
    assert_eq!(fleet.health().values().filter(|h| h.contains("\"ok\"")).count(), 5);
    assert_eq!(
        fleet.read("config/projects.csv"),
        csv(&["hostomatic,5,s-2vcpu-4gb,s-2vcpu-4gb", "digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb"])
    );
    assert_eq!(
        fleet.state().projects["hostomatic-prod"]["backend"].assigned_droplets,
        ["web1", "web2", "web3", "web4"]
    );
    assert_eq!(fleet.json(&["--orchestrate"])["plan"], serde_json::json!([]));
}

#[test]
fn scaling_down_without_confirmation_changes_nothing() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.files();
    let message = fleet.fails(&["--scale", "hostomatic", "2"]);
    assert!(message.contains("the plan destroys 1 droplet; re-run with --yes"), "{message}");
    crate::common::assert_unchanged(&before, &fleet.files());
    assert_eq!(fleet.agent_pids().len(), 3);
}

#[test]
fn scaling_an_unknown_project_names_the_ones_there_are() {
    let fleet = TestFleet::example();
    let message = fleet.fails(&["--scale", "nope", "2"]);
    assert!(
        message.contains(
            "project \"nope\" is not in config/projects.csv (it has: hostomatic, digitalpixo)"
        ),
        "{message}"
    );
    let message = fleet.fails(&["--scale", "hostomatic", "0"]);
    assert!(message.contains("must be a whole number from 1 to 100"), "{message}");
}

#[test]
fn a_header_only_csv_with_yes_stops_every_droplet() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let pids = fleet.agent_pids();
    fleet.write("config/projects.csv", csv(&[]));
    fleet.ok(&["--orchestrate", "--yes"]);
    assert!(fleet.state().droplets.is_empty());
    assert!(fleet.agent_pids().is_empty());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "agent {pid} still runs"
        );
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
}

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let fleet = TestFleet::example();
    let before = fleet.files();
    let outcome = fleet.json(&["--orchestrate", "--dry-run"]);
    assert_eq!(outcome["dry_run"], true);
    let creates: Vec<&str> = outcome["plan"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter(|a| a["action"] == "create")
        .filter_map(|a| a["target"].as_str())
        .collect();
    assert_eq!(creates, ["master", "web1", "web2"]);
    assert!(fleet.agent_pids().is_empty());
    let after = fleet.files();
    let new: Vec<_> = after.0.keys().filter(|path| !before.contains(path)).collect();
    assert!(new.iter().all(|p| !p.to_string_lossy().contains("config/")), "{new:?}");
}

#[test]
fn a_killed_droplet_shows_as_not_running_and_is_started_again() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let web1 = fleet.state().droplets["web1"].clone();
    let pid = fleet.agent_pids().into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&web1.id))
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.expect("web1's agent")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kills");
    std::thread::sleep(std::time::Duration::from_millis(200));

    let status = fleet.json(&["--status"]);
    let health = |status: &serde_json::Value, name: &str| {
        status["droplets"]
            .as_array()
            .expect("droplets")
            .iter()
            .find(|d| d["name"] == name)
            .expect("listed")["health"]
            .clone()
    };
    assert_eq!(health(&status, "web1"), "not running");
    assert_eq!(health(&status, "web2"), "healthy");

    let outcome = fleet.json(&["--orchestrate"]);
    assert_eq!(outcome["plan"][0]["action"], "start");
    assert_eq!(outcome["plan"][0]["target"], "web1");
    assert_eq!(health(&fleet.json(&["--status"]), "web1"), "healthy");
    assert_eq!(fleet.state().droplets["web1"].ip, web1.ip, "a restarted droplet keeps its address");
}

#[test]
fn hand_edits_to_the_state_are_overwritten() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let honest = fleet.read("config/infrastructure.json");
    let edited = honest.replace("\"size\": \"s-2vcpu-4gb\"", "\"size\": \"s-8vcpu-16gb\"");
    assert_ne!(edited, honest);
    fleet.write("config/infrastructure.json", &edited);
    fleet.ok(&["--orchestrate"]);
    assert!(!fleet.read("config/infrastructure.json").contains("s-8vcpu-16gb"));
    assert_eq!(
        fleet.read("config/infrastructure.json.bak"),
        edited,
        "the previous version is kept"
    );
}

#[test]
fn a_second_orchestrator_waits_then_names_the_holder() {
    let fleet = TestFleet::example();
    let store = fleet::StateStore::new(fleet.path().join("config/infrastructure.json"));
    let _held = store
        .lock("orchestrator --orchestrate, pid 4242", std::time::Duration::ZERO)
        .expect("locks");
    let message = fleet.fails(&["--orchestrate", "--lock-wait", "1"]);
    assert!(
        message.contains(
            "another orchestrator is changing this fleet (orchestrator --orchestrate, pid 4242"
        ),
        "{message}"
    );
    assert!(fleet.agent_pids().is_empty());
}

#[test]
fn force_replaces_every_droplet_after_confirmation() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state();
    fleet.fails(&["--orchestrate", "--force"]);
    fleet.ok(&["--orchestrate", "--force", "--yes"]);
    let after = fleet.state();
    for name in ["master", "web1", "web2"] {
        assert_ne!(before.droplets[name].id, after.droplets[name].id, "{name} was replaced");
    }
    assert_eq!(fleet.agent_pids().len(), 3);
}

#[test]
fn a_bigger_spec_resizes_the_droplet_in_place() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state();
    fleet.write(
        "config/projects.csv",
        csv(&["hostomatic,3,s-4vcpu-8gb,s-2vcpu-4gb", "digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
    );
    let message = fleet.fails(&["--orchestrate"]);
    assert!(message.contains("resizes 1 droplet"), "{message}");
    fleet.ok(&["--orchestrate", "--yes"]);
    let after = fleet.state();
    assert_eq!(after.droplets["master"].size, "s-4vcpu-8gb");
    assert_eq!(after.droplets["master"].id, before.droplets["master"].id);
    assert!(fleet.health()["master"].contains("\"ok\""));
}
