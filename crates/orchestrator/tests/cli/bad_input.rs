//! Every bad input is refused with the file, line and field, a non-zero exit, and no change.

use crate::common::{TestFleet, csv};

/// Writes `projects.csv`, runs `--orchestrate`, and checks the refusal changed nothing.
fn refuse_csv(contents: impl AsRef<[u8]>, expected: &str) {
    let fleet = TestFleet::example();
    fleet.write("config/projects.csv", contents);
    let before = fleet.files();
    let message = fleet.fails(&["--orchestrate", "--yes"]);
    assert!(message.contains(expected), "expected {expected:?} in:\n{message}");
    crate::common::assert_unchanged(&before, &fleet.files());
    assert!(fleet.agent_pids().is_empty());
}

#[test]
fn negative_servers_is_refused_naming_line_2() {
    refuse_csv(
        csv(&["hostomatic,-1,s-2vcpu-4gb,s-2vcpu-4gb"]),
        "config/projects.csv, line 2, field Servers: must be a positive whole number, got \"-1\"",
    );
}

#[test]
fn absurd_server_counts_are_refused() {
    refuse_csv(
        csv(&["hostomatic,1000000,s-2vcpu-4gb,s-2vcpu-4gb"]),
        "line 2, field Servers: 1000000 is more than the 100",
    );
}

#[test]
fn duplicate_projects_are_refused() {
    refuse_csv(
        csv(&["hostomatic,1,s-1vcpu-1gb,s-1vcpu-1gb", "Hostomatic,2,s-1vcpu-1gb,s-1vcpu-1gb"]),
        "line 3, field Project: project \"Hostomatic\" is already defined on line 2",
    );
}

#[test]
fn wrong_columns_are_refused() {
    refuse_csv(
        "Project,Servers,MasterSpec\nhostomatic,1,s-1vcpu-1gb\n",
        "line 1: the header has no column \"WebSpec\"",
    );
    refuse_csv(
        "Name,Servers,MasterSpec,WebSpec\n",
        "line 1: the header has an unknown column \"Name\"",
    );
}

#[test]
fn an_unterminated_quote_is_refused() {
    refuse_csv(
        csv(&["\"hostomatic,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
        "line 2: a quoted field opened here is never closed",
    );
}

#[test]
fn invalid_utf8_is_refused() {
    let mut bytes = csv(&[]).into_bytes();
    bytes.extend_from_slice(b"h\xffstomatic,1,s-1vcpu-1gb,s-1vcpu-1gb\n");
    refuse_csv(bytes, "line 2: is not valid UTF-8");
}

#[test]
fn unknown_sizes_are_refused() {
    refuse_csv(
        csv(&["hostomatic,1,s-1vcpu-1gb,s-99vcpu"]),
        "line 2, field WebSpec: \"s-99vcpu\" is not a droplet size",
    );
}

#[test]
fn unsafe_project_names_are_refused() {
    refuse_csv(
        csv(&["../../etc,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
        "line 2, field Project: project name \"../../etc\"",
    );
    refuse_csv(
        csv(&["my_app,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
        "line 2, field Project: project name \"my_app\"",
    );
}

#[test]
fn a_spreadsheet_export_is_accepted() {
    let fleet = TestFleet::example();
    fleet.write(
        "config/projects.csv",
        "\u{feff}Project, Servers ,MasterSpec,WebSpec\r\n\r\n hostomatic , 2 ,s-1vcpu-1gb,s-1vcpu-1gb\r\n,,,\r\n",
    );
    let outcome = fleet.json(&["--orchestrate", "--dry-run"]);
    let creates: Vec<&str> = outcome["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .filter(|a| a["action"] == "create")
        .filter_map(|a| a["target"].as_str())
        .collect();
    assert_eq!(creates, ["master", "web1"]);
}

#[test]
fn deployment_config_errors_name_the_json_path() {
    let fleet = TestFleet::example();
    let config = fleet
        .read("config/deployment_config.json")
        .replace("\"type\": \"worker\"", "\"type\": \"wrker\"");
    fleet.write("config/deployment_config.json", config);
    let before = fleet.files();
    let message = fleet.fails(&["--orchestrate"]);
    assert!(
        message.contains("config/deployment_config.json at projects.hostomatic.services.worker_email.type: unknown variant `wrker`"),
        "{message}"
    );
    crate::common::assert_unchanged(&before, &fleet.files());
}

#[test]
fn a_missing_csv_points_at_setup() {
    let fleet = TestFleet::empty();
    assert!(
        fleet
            .fails(&["--orchestrate"])
            .contains("config/projects.csv does not exist; run `orchestrator --setup`")
    );
}

#[test]
fn init_refuses_a_bad_admin_ip_and_makes_no_key() {
    let fleet = TestFleet::configured();
    fleet.write(".env", "ADMIN_IP=300.1.1.1\n");
    let message = fleet.fails(&["--init"]);
    assert!(message.contains("ADMIN_IP") && message.contains("not an IP address"), "{message}");
    assert!(!fleet.path().join("home/.ssh/infrastructure_key").exists());
}

#[test]
fn init_refuses_a_broken_template() {
    let fleet = TestFleet::configured();
    fleet.write("templates/nginx.conf.j2", "{% for x in y %}\nnever closed\n");
    let message = fleet.fails(&["--init"]);
    assert!(message.contains("templates/nginx.conf.j2, line"), "{message}");
    assert!(!fleet.path().join("home/.ssh/infrastructure_key").exists());
}

#[test]
fn update_ip_refuses_nonsense_and_records_a_valid_address() {
    let fleet = TestFleet::example();
    assert!(
        fleet.fails(&["--update-ip", "not-an-ip"]).contains("is not an IP address or CIDR block")
    );
    assert!(fleet.fails(&["--update-ip", "0.0.0.0/0"]).contains("whole internet"));
    assert!(!fleet.path().join("config/infrastructure.json").exists());
    let change = fleet.json(&["--update-ip", "203.0.113.7"]);
    assert_eq!(change["admin_ip"], "203.0.113.7/32");
    assert_eq!(fleet.state().admin_ip.as_deref(), Some("203.0.113.7/32"));
    fleet.ok(&["--orchestrate"]);
    assert_eq!(
        fleet.state().admin_ip.as_deref(),
        Some("203.0.113.7/32"),
        "orchestrate keeps the address"
    );
}

#[test]
fn a_mistyped_project_warns_and_removing_its_services_needs_confirmation() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    fleet.write(
        "config/projects.csv",
        csv(&["hostomatc,3,s-2vcpu-4gb,s-2vcpu-4gb", "digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
    );
    let before = fleet.files();
    let output = fleet.run(&["--orchestrate"]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("Warning: project hostomatc (projects.csv line 2) has no services"),
        "{said}"
    );
    assert!(said.contains("Warning: project hostomatic is configured in deployment_config.json but not in projects.csv"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("removes 6 services"));
    crate::common::assert_unchanged(&before, &fleet.files());
}

#[test]
fn repeated_keys_and_trailing_text_in_json_are_refused() {
    let fleet = TestFleet::example();
    let config = fleet.read("config/deployment_config.json");
    fleet.write("config/deployment_config.json", format!("{config}{config}"));
    assert!(fleet.fails(&["--orchestrate"]).contains("trailing characters"));
    let doubled = config.replacen("\"backend\": {", "\"backend\": {},\n        \"backend\": {", 1);
    fleet.write("config/deployment_config.json", doubled);
    let message = fleet.fails(&["--orchestrate"]);
    assert!(
        message
            .contains("at projects.hostomatic.services.backend: the key \"backend\" appears twice"),
        "{message}"
    );
}

#[test]
fn the_config_dir_names_the_same_fleet_however_it_is_spelled() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let inside = std::process::Command::new(crate::common::BINARY)
        .args(["--status", "--json", "--config-dir", "."])
        .current_dir(fleet.path().join("config"))
        .env("HOME", fleet.path().join("home"))
        .output()
        .expect("runs");
    let status: serde_json::Value = serde_json::from_slice(&inside.stdout).expect("json");
    assert_eq!(status["healthy_droplets"], 3, "{status}");
    assert!(!fleet.path().join("config/.local-cloud").exists());
}

#[test]
fn a_closed_output_pipe_does_not_stop_a_change_halfway() {
    let fleet = TestFleet::example();
    let mut child = std::process::Command::new(crate::common::BINARY)
        .args(["--orchestrate"])
        .current_dir(fleet.path())
        .env("HOME", fleet.path().join("home"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("finishes");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    assert!(output.status.success());
    assert_eq!(fleet.state().droplet_names(), ["master", "web1", "web2"]);
}

#[test]
fn scaling_writes_through_a_symbolic_link_and_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = TestFleet::example();
    let real = fleet.path().join("projects-real.csv");
    std::fs::rename(fleet.path().join("config/projects.csv"), &real).expect("moves");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::symlink(&real, fleet.path().join("config/projects.csv")).expect("links");
    fleet.ok(&["--scale", "hostomatic", "2", "--dry-run"]);
    fleet.ok(&["--scale", "digitalpixo", "1"]);
    fleet.ok(&["--scale", "hostomatic", "4"]);
    assert!(
        std::fs::symlink_metadata(fleet.path().join("config/projects.csv"))
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&real).expect("reads").contains("hostomatic,4,"));
    assert_eq!(std::fs::metadata(&real).expect("meta").permissions().mode() & 0o777, 0o600);
}

#[test]
fn init_keeps_an_address_recorded_by_update_ip() {
    let fleet = TestFleet::example();
    fleet.write(".env", "ADMIN_IP=198.51.100.1\n");
    fleet.ok(&["--init"]);
    fleet.ok(&["--update-ip", "203.0.113.9"]);
    let steps = fleet.json(&["--init"]);
    assert_eq!(fleet.state().admin_ip.as_deref(), Some("203.0.113.9/32"));
    assert!(
        steps
            .to_string()
            .contains("kept 203.0.113.9/32 (set by --update-ip; ADMIN_IP says 198.51.100.1/32)")
    );
}
