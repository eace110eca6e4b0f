//! Starting and stopping a local droplet's agent process.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::time::{Instant, sleep};

use super::manifest::{self, DropletManifest, LOG_FILE, PID_FILE};
use crate::provider::ProviderError;

/// The variables of the command line's environment an agent of the local cloud gets.
const DROPLET_ENVIRONMENT: [&str; 8] = [
    "PATH",
    "HOME",
    "LANG",
    "TZ",
    "RUST_LOG",
    "ORCHESTRATOR_NGINX",
    // The machine's container engine, which the local cloud's droplets share.
    "DOCKER_HOST",
    "CONTAINER_HOST",
];

/// How long an agent has to answer its health check after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an agent has to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the agent of the droplet in `dir` and waits until it answers `/health`.
///
/// The agent runs in its own process group, so it outlives the command that started it and
/// a Ctrl-C at the terminal does not reach it.
pub async fn start(
    binary: &Path,
    dir: &Path,
    http: &reqwest::Client,
) -> Result<i32, ProviderError> {
    let droplet =
        DropletManifest::read(dir).map_err(ProviderError::io(format!("read {}", dir.display())))?;
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(ProviderError::io(format!("open {}", log_path.display())))?;
    let log_err = log.try_clone().map_err(ProviderError::io("duplicate the log handle"))?;
    let _ = std::fs::remove_file(dir.join(PID_FILE));

    let mut child = tokio::process::Command::new(binary)
        .arg("agent")
        .arg("--droplet-dir")
        .arg(dir)
        // A droplet is a machine of its own: nothing of the administrator's environment (where
        // secrets may sit) reaches it but what a program needs to run.
        .env_clear()
        .envs(
            DROPLET_ENVIRONMENT.iter().filter_map(|name| Some((*name, std::env::var(name).ok()?))),
        )
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(ProviderError::io(format!("start {}", binary.display())))?;

    let url = format!("http://{}:{}/health", droplet.address, droplet.agent_port);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(did_not_start(
                &droplet.name,
                &log_path,
                format!("it exited with {status}"),
            ));
        }
        let answered = http.get(&url).timeout(Duration::from_millis(500)).send().await;
        if answered.is_ok_and(|response| response.status().is_success())
            && let Some(pid) = manifest::running_agent(dir)
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            return Err(did_not_start(
                &droplet.name,
                &log_path,
                format!("{url} did not answer within {START_TIMEOUT:?}"),
            ));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Stops the droplet in `dir`, if it runs: SIGTERM to its agent, which stops what it started;
/// then SIGKILL to whatever is left of the droplet's process group.
pub async fn stop(dir: &Path) {
    let Some(pid) = manifest::running_agent(dir) else {
        // The agent is gone, but what it started (nginx, its workers) may live on.
        kill_leftovers(dir);
        return;
    };
    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while manifest::is_agent_of(pid, dir) {
        if Instant::now() > deadline {
            tracing::warn!(pid, dir = %dir.display(), "agent ignored SIGTERM; killing it");
            break;
        }
        sleep(Duration::from_millis(25)).await;
    }
    kill_droplet(pid);
    kill_leftovers(dir);
    let _ = std::fs::remove_file(dir.join(PID_FILE));
}

/// Kills what is left of the droplet in `dir`: its agent and nginx processes (found by their
/// command line naming the directory), each with its whole process group, since nginx's
/// workers name nothing but share their master's group; and the containers its agent started,
/// which the engine runs outside any of its processes.
pub fn kill_leftovers(dir: &Path) {
    crate::engine::remove_containers_blocking(dir);
    let wanted = dir.as_os_str().as_encoded_bytes();
    // The services an agent started share its process group and outlive an agent killed on
    // its own; the group is known by the pid file the agent left.
    let agent_group: Option<i32> = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|pid| *pid > 1);
    let inside = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let names_dir = cmdline.windows(wanted.len()).any(|window| window == wanted);
        let ours =
            cmdline.starts_with(b"nginx") || cmdline.windows(14).any(|w| w == b"--droplet-dir\0");
        let group = process_group(pid);
        // A member of the dead agent's group still working inside the droplet is its service.
        let service = group.is_some() && group == agent_group && works_inside(pid, &inside);
        if !(service || names_dir && ours) {
            continue;
        }
        match group {
            // Never the group of the command that is cleaning up.
            Some(group) if group > 1 && group != nix::unistd::getpgrp().as_raw() => {
                let _ = signal::killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
            _ => {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

/// Whether the process's working directory is `dir` or below it.
fn works_inside(pid: i32, dir: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
}

/// Kills the process group an agent leads: the agent and everything it started, the way a
/// powered-off server loses all its processes at once.
pub fn kill_droplet(agent_pid: i32) {
    let _ = signal::killpg(Pid::from_raw(agent_pid), Signal::SIGKILL);
}

fn did_not_start(name: &str, log_path: &Path, reason: String) -> ProviderError {
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    ProviderError::AgentDidNotStart {
        name: name.to_string(),
        reason,
        log: log_path.display().to_string(),
        tail,
    }
}
