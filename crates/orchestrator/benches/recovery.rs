//! How fast the local cloud heals itself, and what watching costs: time from `kill -9` of a
//! web droplet to the monitors' consensus and to the replacement serving through nginx, and
//! each agent's resident memory and CPU while monitoring an idle fleet.
//!
//! `cargo bench -p orchestrator --bench recovery` (needs nginx). Uses the real binary and
//! real agent processes in a temporary directory, and stops them all at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use orchestrator::provider::local::LocalCloud;
use orchestrator::provider::local::manifest::running_agent;

const BINARY: &str = env!("CARGO_BIN_EXE_orchestrator");
const ROUNDS: usize = 3;

#[allow(clippy::disallowed_methods)]
fn pause(duration: Duration) {
    // A benchmark binary outside any async runtime; a plain sleep blocks nothing.
    std::thread::sleep(duration);
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let run = |args: &[&str]| {
        let output = Command::new(BINARY)
            .args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path().join("home"))
            .output()
            .expect("runs");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    run(&["--setup"]);
    run(&["--init"]);
    run(&["--orchestrate"]);
    let cloud =
        LocalCloud::new(&dir.path().join(".local-cloud"), Path::new(BINARY), None).expect("opens");

    pause(Duration::from_secs(5));
    let (memory, cpu) = idle_cost(dir.path());

    let mut consensus = Vec::new();
    let mut serving = Vec::new();
    for _ in 0..ROUNDS {
        let state = state(dir.path());
        let master = &state["droplets"]["master"];
        let status_url = format!(
            "http://{}:{}/status",
            master["ip"].as_str().expect("ip"),
            master["agent_port"]
        );
        let lb_url = format!(
            "http://{}:{}/lb-status",
            master["ip"].as_str().expect("ip"),
            master["agent_port"]
        );
        let old_ip = state["droplets"]["web1"]["ip"].as_str().expect("ip").to_string();
        let web1_dir = dir
            .path()
            .join(".local-cloud/droplets")
            .join(state["droplets"]["web1"]["id"].as_str().expect("id"));
        let pid = running_agent(&web1_dir).expect("web1 runs");

        let killed = Instant::now();
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kills");
        let mut agreed = None;
        loop {
            if agreed.is_none() && get(&status_url).contains("failed (recovery led by") {
                agreed = Some(killed.elapsed());
            }
            let lb = get(&lb_url);
            let replaced = lb.contains("\"name\":\"web1\"")
                && !lb.contains(&format!("\"address\":\"{old_ip}\""));
            if replaced && lb.contains("\"health\":\"healthy\"") && web1_healthy(&lb) {
                serving.push(killed.elapsed());
                break;
            }
            assert!(killed.elapsed() < Duration::from_secs(90), "no recovery within 90 s");
            pause(Duration::from_millis(100));
        }
        consensus.push(agreed.unwrap_or_else(|| killed.elapsed()));
        run(&["--orchestrate"]);
        pause(Duration::from_secs(3));
    }
    cloud.kill_all();

    consensus.sort();
    serving.sort();
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "kill -9 of web1 to consensus: median {:.1} s ({:?})",
        consensus[ROUNDS / 2].as_secs_f64(),
        secs(&consensus)
    );
    println!(
        "kill -9 of web1 to the replacement healthy behind nginx: median {:.1} s ({:?})",
        serving[ROUNDS / 2].as_secs_f64(),
        secs(&serving)
    );
    println!("agent resident memory while monitoring: {memory}");
    println!("agent CPU while monitoring an idle fleet: {cpu}");
}

fn secs(list: &[Duration]) -> Vec<String> {
    list.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect()
}

fn web1_healthy(lb: &str) -> bool {
    let value: serde_json::Value = serde_json::from_str(lb).unwrap_or_default();
    value["droplets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["name"] == "web1" && d["health"] == "healthy")
}

fn state(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("config/infrastructure.json")).expect("state"))
        .expect("json")
}

fn get(url: &str) -> String {
    let output = Command::new("curl").args(["-s", "--max-time", "1", url]).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default()
}

/// Resident memory (largest of the agents) and CPU share (over ten seconds, per agent).
fn idle_cost(root: &Path) -> (String, String) {
    let pids: Vec<i32> = std::fs::read_dir(root.join(".local-cloud/droplets"))
        .expect("droplets")
        .filter_map(Result::ok)
        .filter_map(|e| running_agent(&e.path()))
        .collect();
    let ticks = |pid: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let before: Vec<u64> = pids.iter().map(|p| ticks(*p)).collect();
    pause(Duration::from_secs(10));
    let after: Vec<u64> = pids.iter().map(|p| ticks(*p)).collect();
    let clock_ticks = 100.0;
    let shares: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b) as f64 / clock_ticks / 10.0 * 100.0)
        .collect();
    let rss: Vec<u64> = pids
        .iter()
        .filter_map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .collect();
    let max_rss = rss.iter().max().copied().unwrap_or(0);
    let max_cpu = shares.iter().copied().fold(0.0, f64::max);
    (
        format!("{:.1} MB at most across {} agents", max_rss as f64 / 1024.0, rss.len()),
        format!("{max_cpu:.2}% of one core at most"),
    )
}
