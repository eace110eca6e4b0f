//! One version of a service as a supervised process: started with its environment, its output
//! kept in a log file, started again after a crash with a growing wait, stopped politely.

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

/// The first wait before a crashed process is started again; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A process that ran this long before crashing starts over from the first wait.
const STEADY: Duration = Duration::from_secs(60);
/// How long a process has to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);
/// The process id file in a version's directory.
const PID_FILE: &str = ".pid";

/// What starts a version.
pub struct Launch {
    /// For messages: `hostomatic-uat backend v1.2.3-…`.
    pub label: String,
    pub command: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    /// The whole environment of the process, secrets included (never its arguments).
    pub environment: Vec<(String, String)>,
    pub backend: Option<SocketAddr>,
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
    loop {
        let started = Instant::now();
        let mut child = match spawn(&launch) {
            Ok(child) => child,
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
        let pid = child.id();
        if let Some(pid) = pid {
            let _ = std::fs::write(launch.dir.join(PID_FILE), pid.to_string());
        }
        set(&status, pid, "running", false);
        tokio::select! {
            exited = child.wait() => {
                let how = exited.map_or_else(|e| e.to_string(), |s| s.to_string());
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
                terminate(&mut child).await;
                break;
            }
        }
    }
    let _ = std::fs::remove_file(launch.dir.join(PID_FILE));
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

fn spawn(launch: &Launch) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&launch.log)?;
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&launch.command)
        .current_dir(&launch.dir)
        .env_clear()
        .envs(inherited())
        .envs(launch.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    command.spawn()
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
