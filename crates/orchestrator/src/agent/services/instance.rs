//! One version of a service, supervised: a process, or a container on the droplet's engine,
//! started with its environment, its output kept in a log file, started again after a crash
//! with a growing wait, stopped politely.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::agent::events::{EventKind, Events};
use crate::engine::{ContainerState, Engine};

/// The first wait before a crashed process is started again; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A process that ran this long before crashing starts over from the first wait.
const STEADY: Duration = Duration::from_secs(60);
/// How long a process has to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);
/// The process id file in a version's directory.
const PID_FILE: &str = ".pid";

/// How often a container's state is read while it runs.
const CONTAINER_POLL: Duration = Duration::from_secs(1);

/// What starts a version.
pub struct Launch {
    /// For messages: `hostomatic-uat backend v1.2.3-…`.
    pub label: String,
    pub runner: Runner,
    pub log: PathBuf,
    /// The whole environment of the service, secrets included (never its arguments).
    pub environment: Vec<(String, String)>,
    pub backend: Option<SocketAddr>,
}

/// What a version runs as.
pub enum Runner {
    /// `sh -c command` in the unpacked artifact `dir`.
    Process { command: String, dir: PathBuf },
    /// A container made from `body` (its image, settings and labels; the environment is added
    /// at each start), named `name` with a counter of starts.
    Container { engine: Engine, name: String, body: Box<bollard::models::ContainerCreateBody> },
}

/// A started version, until it exits.
enum Running {
    Child(tokio::process::Child),
    Container { engine: Engine, id: String, logs: tokio::task::JoinHandle<()> },
}

#[derive(Debug, Clone, Default)]
pub struct Status {
    pub pid: Option<u32>,
    pub state: &'static str,
    pub restarts: u32,
}

/// A running (or restarting) version.
pub struct Instance {
    backend: Option<SocketAddr>,
    log: PathBuf,
    status: Arc<Mutex<Status>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Instance {
    pub fn start(launch: Launch, events: Arc<Events>) -> Instance {
        let status = Arc::new(Mutex::new(Status { pid: None, state: "starting", restarts: 0 }));
        let (stop, stopped) = watch::channel(false);
        let backend = launch.backend;
        let log = launch.log.clone();
        let task = tokio::spawn(supervise(launch, Arc::clone(&status), stopped, events));
        Instance { backend, log, status, stop, task }
    }

    pub fn backend(&self) -> Option<SocketAddr> {
        self.backend
    }

    pub fn status(&self) -> Status {
        self.status.lock().expect("not poisoned").clone()
    }

    /// Whether the process has exited on its own since it started.
    pub fn crashed(&self) -> bool {
        let status = self.status();
        status.restarts > 0 || status.state != "running"
    }

    /// The newest `count` lines of the version's log.
    pub fn last_log_lines(&self, count: usize) -> Vec<String> {
        tail(&self.log, count)
    }

    /// Stops the process (SIGTERM, then SIGKILL after a grace period) and its supervision.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn supervise(
    launch: Launch,
    status: Arc<Mutex<Status>>,
    mut stopped: watch::Receiver<bool>,
    events: Arc<Events>,
) {
    let mut wait = FIRST_WAIT;
    let mut starts = 0u32;
    loop {
        let started = Instant::now();
        starts += 1;
        let mut running = match spawn(&launch, starts).await {
            Ok(running) => running,
            Err(err) => {
                events.record(EventKind::Failure, format!("{} cannot start: {err}", launch.label));
                set(&status, None, "restarting", false);
                if pause(&mut stopped, wait).await {
                    break;
                }
                wait = (wait * 2).min(MAX_WAIT);
                continue;
            }
        };
        let pid = running.pid().await;
        if let (Some(pid), Runner::Process { dir, .. }) = (pid, &launch.runner) {
            let _ = std::fs::write(dir.join(PID_FILE), pid.to_string());
        }
        set(&status, pid, "running", false);
        tokio::select! {
            how = running.exited() => {
                running.clean_up().await;
                if started.elapsed() >= STEADY {
                    wait = FIRST_WAIT;
                }
                events.record(
                    EventKind::Failure,
                    format!("{} exited ({how}); starting it again in {} s", launch.label, wait.as_secs()),
                );
                set(&status, None, "restarting", true);
                if pause(&mut stopped, wait).await {
                    break;
                }
                wait = (wait * 2).min(MAX_WAIT);
            }
            _ = stopped.changed() => {
                running.terminate().await;
                break;
            }
        }
    }
    if let Runner::Process { dir, .. } = &launch.runner {
        let _ = std::fs::remove_file(dir.join(PID_FILE));
    }
    set(&status, None, "stopped", false);
}

/// Sleeps `wait` unless told to stop first; true if told to stop.
async fn pause(stopped: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

fn set(status: &Mutex<Status>, pid: Option<u32>, state: &'static str, restarted: bool) {
    let mut status = status.lock().expect("not poisoned");
    status.pid = pid;
    status.state = state;
    if restarted {
        status.restarts += 1;
    }
}

/// Starts the version once more; `start` counts the starts, so each container is new.
async fn spawn(launch: &Launch, start: u32) -> Result<Running, String> {
    match &launch.runner {
        Runner::Process { command, dir } => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&launch.log)
                .map_err(|err| err.to_string())?;
            let mut process = tokio::process::Command::new("/bin/sh");
            process
                .arg("-c")
                .arg(command)
                .current_dir(dir)
                .env_clear()
                .envs(inherited())
                .envs(launch.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().map_err(|err| err.to_string())?))
                .stderr(Stdio::from(log));
            process.spawn().map(Running::Child).map_err(|err| err.to_string())
        }
        Runner::Container { engine, name, body } => {
            let mut body = body.as_ref().clone();
            let environment = launch.environment.iter().map(|(k, v)| format!("{k}={v}"));
            body.env = Some(environment.collect());
            let name = format!("{name}-{start}");
            // A container of this name left by an agent that was killed is not ours to keep.
            engine.remove(&name).await;
            let id = engine.run(&name, body).await.map_err(|err| err.to_string())?;
            let (following, log) = (engine.clone(), launch.log.clone());
            let followed = id.clone();
            let logs = tokio::spawn(async move { following.follow_logs(&followed, &log).await });
            Ok(Running::Container { engine: engine.clone(), id, logs })
        }
    }
}

impl Running {
    async fn pid(&self) -> Option<u32> {
        match self {
            Running::Child(child) => child.id(),
            Running::Container { engine, id, .. } => match engine.state(id).await {
                Ok(ContainerState::Running { pid }) => pid,
                _ => None,
            },
        }
    }

    /// Waits until the version exits on its own; says how.
    async fn exited(&mut self) -> String {
        match self {
            Running::Child(child) => {
                child.wait().await.map_or_else(|e| e.to_string(), |s| s.to_string())
            }
            Running::Container { engine, id, .. } => loop {
                match engine.state(id).await {
                    Ok(ContainerState::Running { .. }) | Err(_) => {
                        tokio::time::sleep(CONTAINER_POLL).await
                    }
                    Ok(ContainerState::Exited { code }) => break format!("exit status: {code}"),
                    Ok(ContainerState::Gone) => break "its container was removed".to_string(),
                }
            },
        }
    }

    /// What an exited version leaves: its container, once its last output is in the log.
    async fn clean_up(self) {
        if let Running::Container { engine, id, logs } = self {
            let _ = tokio::time::timeout(Duration::from_secs(2), logs).await;
            engine.remove(&id).await;
        }
    }

    /// Stops the version: SIGTERM (or the container's stop signal), SIGKILL after a grace.
    async fn terminate(self) {
        match self {
            Running::Child(mut child) => terminate(&mut child).await,
            Running::Container { engine, id, logs } => {
                engine.stop(&id, GRACE).await;
                logs.abort();
            }
        }
    }
}

/// The few variables of the agent's own environment a service gets.
fn inherited() -> Vec<(String, String)> {
    ["PATH", "HOME", "LANG", "TZ"]
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value)))
        .collect()
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// The newest `count` lines of a file, reading only its end.
fn tail(path: &Path, count: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)));
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

/// Stops processes a previous run of the agent left behind: the directories `depth` levels
/// below `root` each name their process, which is only killed if it still runs there.
pub fn kill_leftovers_at(root: &Path, depth: usize) {
    let Ok(units) = glob_dirs(root, depth) else { return };
    for dir in units {
        let Ok(text) = std::fs::read_to_string(dir.join(PID_FILE)) else { continue };
        let Ok(pid) = text.trim().parse::<i32>() else { continue };
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
        if cwd.as_deref() == Some(dir.as_path()) {
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(dir.join(PID_FILE));
    }
}

/// Directories exactly `depth` levels below `root`.
fn glob_dirs(root: &Path, depth: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in level {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            next.extend(entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()));
        }
        level = next;
    }
    Ok(level)
}

/// Keeps the `keep` most recently used versions of a service and their logs.
pub fn prune(unit_dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(unit_dir) else { return };
    let mut versions: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.join(PID_FILE).exists())
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    versions.sort();
    let excess = versions.len().saturating_sub(keep.saturating_sub(1));
    for (_, dir) in versions.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
