use crate::common::TestFleet;

#[test]
fn status_lists_droplets_services_and_no_issues() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let status = fleet.json(&["--status"]);
    let droplets = status["droplets"].as_array().expect("droplets");
    let names: Vec<&str> = droplets.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["master", "web1", "web2"]);
    assert!(droplets.iter().all(|d| d["health"] == "healthy"), "{droplets:?}");
    assert_eq!(droplets[1]["monitored_by"], serde_json::json!(["master", "web2"]));
    assert_eq!(
        status["projects"]["hostomatic-prod"]["backend"]["assigned_droplets"],
        serde_json::json!(["web1", "web2"])
    );
    assert_eq!(status["issues"], serde_json::json!([]));
    assert_eq!(status["summary"]["droplets"], 3);

    let table = fleet.ok(&["--status"]);
    assert!(
        table.contains("DROPLET")
            && table.contains("hostomatic-prod")
            && table.contains("No issues."),
        "{table}"
    );
}

#[test]
fn status_says_a_lone_master_is_watched_by_nobody() {
    let fleet = TestFleet::example();
    fleet.write(
        "config/projects.csv",
        "Project,Servers,MasterSpec,WebSpec\ndigitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb\n",
    );
    fleet.ok(&["--orchestrate"]);
    let status = fleet.json(&["--status"]);
    assert!(
        status["monitoring"][0]
            .as_str()
            .expect("a note")
            .contains("master is the only droplet: nobody watches it")
    );
}

#[test]
fn status_reports_a_droplet_missing_at_the_provider() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let web2 = fleet.state().droplets["web2"].clone();
    let dir = fleet.path().join(".local-cloud/droplets").join(&web2.id);
    if let Some(pid) = orchestrator::provider::local::manifest::running_agent(&dir) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
            .expect("kills");
    }
    std::fs::remove_dir_all(&dir).expect("removes");
    let status = fleet.json(&["--status"]);
    let issues = status["issues"].to_string();
    assert!(
        issues.contains("droplet web2") && issues.contains("missing at the provider"),
        "{issues}"
    );
}

#[test]
fn status_names_a_killed_droplet_as_an_issue() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let web1 = fleet.state().droplets["web1"].clone();
    let dir = fleet.path().join(".local-cloud/droplets").join(&web1.id);
    let pid = orchestrator::provider::local::manifest::running_agent(&dir).expect("running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kills");
    crate::common::eventually(5, "the agent to die", || {
        orchestrator::provider::local::manifest::running_agent(&dir).is_none()
    });
    let status = fleet.json(&["--status"]);
    assert!(status["issues"].to_string().contains("droplet web1 is not running"), "{status}");
    assert_eq!(status["healthy_droplets"], 2);
}

#[test]
fn status_lists_missing_secrets_by_project_environment_and_never_a_value() {
    let fleet = TestFleet::example();
    fleet.write(".env", "HOSTOMATIC_PROD_DB_PASSWORD=s3cret-value\nSTRIPE_KEY=another-s3cret\n");
    fleet.ok(&["--orchestrate"]);
    let status = fleet.json(&["--status"]);
    let prod: Vec<&str> = status["missing_secrets"]["hostomatic-prod"]
        .as_array()
        .expect("hostomatic-prod misses some")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(
        prod,
        ["openai_api_key", "redis_password", "sendgrid_api_key", "stripe_publishable_key"],
        "the services' secrets, and the password of the Redis the project uses"
    );
    let uat = status["missing_secrets"]["hostomatic-uat"].to_string();
    assert!(uat.contains("\"db_password\"") && uat.contains("HOSTOMATIC_UAT_DB_PASSWORD"), "{uat}");
    let table = fleet.ok(&["--status"]);
    assert!(
        table.contains(
            "hostomatic-prod: openai_api_key, redis_password, sendgrid_api_key, stripe_publishable_key"
        ),
        "{table}"
    );
    for output in [status.to_string(), table] {
        assert!(!output.contains("s3cret"));
    }
}

#[test]
fn services_shows_each_endpoint_its_route_and_its_health() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let state = fleet.state();
    let port = state.projects["hostomatic-prod"]["backend"].port.expect("a port");
    let _web1 = crate::common::TextServer::start(&state.droplets["web1"].ip, port, "ok");
    let found = fleet.json(&["--services", "hostomatic", "prod"]);
    let backend = found["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == "backend")
        .expect("backend");
    assert_eq!(backend["port"], port);
    assert_eq!(
        backend["route"],
        format!("http://{}:8080/hostomatic/prod/backend/", state.droplets["master"].ip)
    );
    assert_eq!(backend["endpoints"][0]["droplet"], "web1");
    assert_eq!(
        backend["endpoints"][0]["url"],
        format!("http://{}:{port}/", state.droplets["web1"].ip)
    );
    assert_eq!(backend["endpoints"][0]["health"], "healthy");
    assert_eq!(backend["endpoints"][1]["health"], "not answering");
    let worker = found["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == "worker_email")
        .expect("worker");
    assert_eq!(worker["route"], serde_json::Value::Null);
    assert!(
        fleet
            .fails(&["--services", "hostomatic", "staging"])
            .contains("hostomatic-staging has no services")
    );
}
