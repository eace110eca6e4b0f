//! The fleet heals itself: real agents watch each other, agree on a failure, and the leader
//! restores the failed droplet from its snapshot, with nobody at the keyboard.

use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use orchestrator::provider::local::manifest::running_agent;

use crate::common::{TestFleet, eventually, http_get};

fn agent_pid(fleet: &TestFleet, name: &str) -> i32 {
    let id = fleet.state().droplets[name].id.clone();
    running_agent(&fleet.path().join(".local-cloud/droplets").join(id)).expect("the agent runs")
}

/// The droplet named `name` as the agents now know it: master's replica.
fn replica_droplet(fleet: &TestFleet, name: &str) -> (String, String) {
    let master = fleet.state().droplets["master"].clone();
    let status: serde_json::Value = serde_json::from_str(&http_get(&format!(
        "http://{}:{}/lb-status",
        master.ip, master.agent_port
    )))
    .unwrap_or_default();
    let droplet = status["droplets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_default();
    (
        droplet["address"].as_str().unwrap_or_default().to_string(),
        droplet["health"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_killed_web_droplet_is_replaced_from_its_snapshot_without_anyone() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["web1"].clone();
    // Power loss: the agent and everything it runs, at once.
    signal::killpg(Pid::from_raw(agent_pid(&fleet, "web1")), Signal::SIGKILL).expect("kills");

    eventually(45, "a new web1 in master's view of the fleet", || {
        let (address, health) = replica_droplet(&fleet, "web1");
        !address.is_empty() && address != before.ip && health == "healthy"
    });
    let (new_address, _) = replica_droplet(&fleet, "web1");
    let master = fleet.state().droplets["master"].clone();
    let lb: serde_json::Value = serde_json::from_str(&http_get(&format!(
        "http://{}:{}/lb-status",
        master.ip, master.agent_port
    )))
    .expect("json");
    let targets = lb["upstreams"]
        .as_array()
        .expect("upstreams")
        .iter()
        .find(|u| u["name"] == "hostomatic--prod--backend")
        .expect("backend")["targets"]
        .to_string();
    assert!(
        targets.contains(&new_address) && !targets.contains(&format!("\"{}\"", before.ip)),
        "nginx routes to the replacement: {targets}"
    );

    let status = fleet.json(&["--status"]);
    assert_eq!(status["summary"]["issues"], status["issues"].as_array().expect("issues").len());
    assert!(status["issues"].to_string().contains("web1 was replaced while you were away"));
    let web1 = status["droplets"]
        .as_array()
        .expect("droplets")
        .iter()
        .find(|d| d["name"] == "web1")
        .expect("web1")
        .clone();
    assert_eq!(web1["ip"], new_address.as_str(), "status shows the droplet as it is now");
    let behind = fleet.fails(&["--recover", "web2", "--yes"]);
    assert!(
        behind.contains("the state file is behind the fleet; run --orchestrate first"),
        "{behind}"
    );

    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains("web1 was replaced while you were away"), "{said}");
    let after = fleet.state().droplets["web1"].clone();
    assert_ne!(after.id, before.id);
    assert_eq!(fleet.state().validate(), Vec::<String>::new());
    assert!(fleet.health()["web1"].contains("\"ok\""));
}

#[test]
fn a_three_second_pause_replaces_nothing() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["web2"].id.clone();
    let pid = Pid::from_raw(agent_pid(&fleet, "web2"));
    signal::kill(pid, Signal::SIGSTOP).expect("stops");
    std::thread::sleep(Duration::from_secs(3));
    signal::kill(pid, Signal::SIGCONT).expect("continues");
    std::thread::sleep(Duration::from_secs(10));
    let status = fleet.json(&["--status"]);
    let web2 = status["droplets"]
        .as_array()
        .expect("droplets")
        .iter()
        .find(|d| d["name"] == "web2")
        .expect("web2")
        .clone();
    assert_eq!(web2["health"], "healthy");
    assert_eq!(fleet.state().droplets["web2"].id, before);
    let ids: Vec<String> = std::fs::read_dir(fleet.path().join(".local-cloud/droplets"))
        .expect("lists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(ids.contains(&before), "web2 was not replaced");
}

#[test]
fn forged_and_unsigned_reports_are_refused() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let master = fleet.state().droplets["master"].clone();
    let base = format!("http://{}:{}", master.ip, master.agent_port);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        orchestrator::http::install_crypto_provider();
        let report = serde_json::json!({"target": "web1", "suspect": true});
        let unsigned = reqwest::Client::new()
            .post(format!("{base}/v1/report"))
            .json(&report)
            .send()
            .await
            .expect("answers");
        assert_eq!(unsigned.status().as_u16(), 401);
        let forged = orchestrator::control::AgentClient::new(
            orchestrator::control::FleetKey::generate(),
            "web2",
        );
        let answer = forged
            .post::<_, serde_json::Value>(&base, "/v1/report", &report, Duration::from_secs(2))
            .await;
        assert!(answer.expect_err("refused").to_string().contains("401"));
    });
    let status: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{base}/status"))).expect("json");
    assert_eq!(status["refused_requests"], 2);
    let watches = status["monitoring"]["watches"].as_array().expect("master watches");
    assert!(watches.iter().all(|w| w["verdict"] == "healthy"), "{watches:?}");

    eventually(10, "the monitors to have checked web1", || {
        let status = fleet.json(&["--status"]);
        let droplets = status["droplets"].as_array().cloned().unwrap_or_default();
        let master = droplets.iter().find(|d| d["name"] == "master").cloned().unwrap_or_default();
        let web1 = droplets.iter().find(|d| d["name"] == "web1").cloned().unwrap_or_default();
        master["refused_requests"] == 2
            && web1["seen_by_monitors"].to_string().contains("master: ok (healthy)")
            && web1["seen_by_monitors"].to_string().contains("web2: ok (healthy)")
    });
}

#[test]
fn a_killed_master_is_replaced_by_its_web_droplets_and_the_load_balancer_returns() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["master"].clone();
    signal::killpg(Pid::from_raw(agent_pid(&fleet, "master")), Signal::SIGKILL).expect("kills");

    eventually(45, "a new master with its load balancer", || {
        let status = fleet.json(&["--status"]);
        let url = status["load_balancer"]["url"].as_str().unwrap_or_default().to_string();
        !url.is_empty()
            && !url.contains(&before.ip)
            && http_get(&format!("{url}health")).contains("load-balancer")
    });
    // The recovery was led by a web droplet, whose events --status gathers with master's.
    let status = fleet.ok(&["--status"]);
    assert!(status.contains("Recent Recovery (on web"), "{status}");
    assert!(status.contains("master recovered from snapshot"), "{status}");
    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains("master was replaced while you were away"), "{said}");
    assert_ne!(fleet.state().droplets["master"].id, before.id);
    assert_eq!(fleet.state().validate(), Vec::<String>::new());
}

#[test]
fn recover_by_hand_replaces_a_droplet_from_its_snapshot() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["web2"].clone();
    assert!(fleet.fails(&["--recover", "web2"]).contains("re-run with --yes"));
    assert!(fleet.fails(&["--recover", "web9", "--yes"]).contains("web9 is not in"));
    let done = fleet.json(&["--recover", "web2", "--yes"]);
    assert!(done["from"].as_str().expect("from").starts_with("snapshot web2-"), "{done}");
    let after = fleet.state().droplets["web2"].clone();
    assert_ne!(after.id, before.id);
    assert_ne!(after.ip, before.ip);
    assert!(fleet.health()["web2"].contains("\"ok\""));
    assert_eq!(fleet.json(&["--orchestrate"])["plan"], serde_json::json!([]));
}

#[test]
fn every_agent_serves_prometheus_metrics() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let web1 = fleet.state().droplets["web1"].clone();
    let url = format!("http://{}:{}/metrics", web1.ip, web1.agent_port);
    eventually(10, "checks to be counted", || {
        http_get(&url).contains("orchestrator_peer_checks_total{target=\"master\",result=\"ok\"}")
    });
    let text = http_get(&url);
    for metric in ["orchestrator_peer_check_seconds_bucket", "orchestrator_suspicions 0"] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
}

#[test]
fn two_neighbours_killed_together_are_both_replaced_in_a_larger_fleet() {
    let fleet = TestFleet::example();
    fleet.write(
        "config/projects.csv",
        crate::common::csv(&["hostomatic,6,s-2vcpu-4gb,s-2vcpu-4gb"]),
    );
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state();
    for name in ["web2", "web3"] {
        signal::killpg(Pid::from_raw(agent_pid(&fleet, name)), Signal::SIGKILL).expect("kills");
    }
    eventually(60, "both neighbours replaced", || {
        ["web2", "web3"].iter().all(|name| {
            let (address, health) = replica_droplet(&fleet, name);
            address != before.droplets[*name].ip && health == "healthy"
        })
    });
    fleet.ok(&["--orchestrate"]);
    assert_eq!(fleet.state().validate(), Vec::<String>::new());
    assert_eq!(fleet.agent_pids().len(), 6, "exactly one of each droplet");
}

#[test]
fn a_flapping_droplet_is_not_replaced() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["web1"].id.clone();
    let pid = Pid::from_raw(agent_pid(&fleet, "web1"));
    for _ in 0..6 {
        signal::kill(pid, Signal::SIGSTOP).expect("stops");
        std::thread::sleep(Duration::from_millis(1500));
        signal::kill(pid, Signal::SIGCONT).expect("continues");
        std::thread::sleep(Duration::from_millis(1500));
    }
    std::thread::sleep(Duration::from_secs(6));
    let ids: Vec<String> = std::fs::read_dir(fleet.path().join(".local-cloud/droplets"))
        .expect("lists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(ids.contains(&before), "web1 was not replaced");
    assert_eq!(ids.len(), 3);
}

/// The fleet after a pause, as `--status` sees it once settled: every droplet answers, once.
fn assert_settled(fleet: &TestFleet) {
    eventually(30, "every droplet healthy", || {
        let status = fleet.json(&["--status"]);
        let droplets = status["droplets"].as_array().cloned().unwrap_or_default();
        droplets.len() == 3 && droplets.iter().all(|d| d["health"] == "healthy")
    });
    assert_eq!(fleet.agent_pids().len(), 3, "no droplet runs twice");
    fleet.ok(&["--orchestrate"]);
    assert_eq!(fleet.state().validate(), Vec::<String>::new());
    assert!(fleet.health().values().all(|h| h.contains("\"ok\"")), "{:?}", fleet.health());
}

/// Whether the process `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: Pid) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn a_droplet_paused_for_ten_seconds_is_ridden_out_or_replaced_but_never_both() {
    // Ten seconds is as long as the monitors take to agree and confirm at the defaults, so
    // either outcome is right; what must not happen is the paused droplet waking up beside
    // its replacement, or a fleet left half-changed.
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["web2"].clone();
    let pid = Pid::from_raw(agent_pid(&fleet, "web2"));
    signal::kill(pid, Signal::SIGSTOP).expect("stops");
    std::thread::sleep(Duration::from_secs(10));
    let _ = signal::kill(pid, Signal::SIGCONT);
    std::thread::sleep(Duration::from_secs(5));
    assert_settled(&fleet);
    let after = fleet.state().droplets["web2"].clone();
    if after.id == before.id {
        assert!(!gone(pid), "web2 was kept, and runs");
    } else {
        assert!(gone(pid), "the paused web2 was removed before its replacement started");
    }
}

#[test]
fn master_paused_for_a_minute_is_replaced_and_never_comes_back_beside_its_replacement() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let before = fleet.state().droplets["master"].clone();
    let pid = Pid::from_raw(agent_pid(&fleet, "master"));
    signal::kill(pid, Signal::SIGSTOP).expect("stops");
    std::thread::sleep(Duration::from_secs(60));
    let _ = signal::kill(pid, Signal::SIGCONT);
    assert!(gone(pid), "the paused master was removed before its replacement started");
    assert_settled(&fleet);
    assert_ne!(fleet.state().droplets["master"].id, before.id);
}

/// Drops packets between two addresses while it lives: a real network partition on loopback.
struct Partition {
    rules: Vec<[String; 2]>,
}

impl Partition {
    fn between(a: &str, b: &str) -> Option<Partition> {
        let partition = Partition {
            rules: vec![[a.to_string(), b.to_string()], [b.to_string(), a.to_string()]],
        };
        for [from, to] in &partition.rules {
            let added = std::process::Command::new("iptables")
                .args(["-w", "-I", "OUTPUT", "-s", from, "-d", to, "-j", "DROP"])
                .status()
                .is_ok_and(|s| s.success());
            if !added {
                return None;
            }
        }
        Some(partition)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        for [from, to] in &self.rules {
            let _ = std::process::Command::new("iptables")
                .args(["-w", "-D", "OUTPUT", "-s", from, "-d", to, "-j", "DROP"])
                .status();
        }
    }
}

#[test]
fn a_monitor_cut_off_from_one_peer_gets_nothing_replaced() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let state = fleet.state();
    let (web1, web2) = (state.droplets["web1"].clone(), state.droplets["web2"].clone());
    let Some(partition) = Partition::between(&web1.ip, &web2.ip) else {
        crate::common::have("iptables (as root)", false);
        return;
    };
    // web1 and web2 watch each other; master watches both and still reaches them.
    eventually(15, "web1 to suspect web2", || {
        let status = fleet.json(&["--status"]);
        status["droplets"].to_string().contains("web1: timed out (suspected by web1")
    });
    std::thread::sleep(Duration::from_secs(10));
    let after = fleet.state();
    assert_eq!(after.droplets["web1"].id, web1.id);
    assert_eq!(after.droplets["web2"].id, web2.id);
    let ids: Vec<String> = std::fs::read_dir(fleet.path().join(".local-cloud/droplets"))
        .expect("lists")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        ids.contains(&web1.id) && ids.contains(&web2.id) && ids.len() == 3,
        "nothing was replaced: {ids:?}"
    );
    drop(partition);
}

#[test]
fn monitor_shows_what_a_droplet_sees_of_its_peers() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    eventually(10, "web1 to have checked its peers", || {
        let view = fleet.json(&["--monitor", "web1"]);
        let targets: Vec<&str> = view["watches"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["target"].as_str())
            .collect();
        targets == ["master", "web2"]
            && view["watches"].to_string().matches("\"last_check\":\"ok\"").count() == 2
    });
    let table = fleet.ok(&["--monitor", "web1"]);
    assert!(table.contains("What web1 sees") && table.contains("WATCHES"), "{table}");
    assert!(fleet.fails(&["--monitor", "web9"]).contains("there is no droplet web9"));
}
