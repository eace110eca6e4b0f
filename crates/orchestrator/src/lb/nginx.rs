//! Driving a real nginx: check a configuration with `nginx -t`, start it, reload it
//! gracefully, stop it.
//!
//! nginx runs in the foreground as a child of the agent, in the agent's process group, so
//! whatever stops the droplet stops nginx too. A reload is a SIGHUP: nginx starts new workers
//! with the new configuration and lets the old ones finish the requests they hold.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::time::{Instant, sleep};

/// Where nginx is looked for besides `PATH` (sbin directories are often not on a user's PATH).
const EXTRA_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];

/// How to install nginx, for the message when it is missing.
pub const INSTALL_HINT: &str = "nginx is not installed on this machine; install it (Debian and Ubuntu: \
                                `sudo apt-get install nginx`) and run --orchestrate again";

/// Names the nginx binary to use instead of searching for one.
pub const NGINX_VARIABLE: &str = "ORCHESTRATOR_NGINX";

/// The nginx binary, if there is one: `ORCHESTRATOR_NGINX` if set, else the first on `PATH`
/// or in the usual sbin directories.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os(NGINX_VARIABLE) {
        let chosen = PathBuf::from(chosen);
        return chosen.is_file().then_some(chosen);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// One nginx instance with its own runtime directory.
#[derive(Debug)]
pub struct Nginx {
    binary: PathBuf,
    runtime: PathBuf,
}

impl Nginx {
    pub fn new(binary: PathBuf, runtime: PathBuf) -> Nginx {
        Nginx { binary, runtime }
    }

    /// The configuration nginx runs with.
    pub fn config_path(&self) -> PathBuf {
        self.runtime.join("nginx.conf")
    }

    /// Checks a configuration file; the error is what nginx said.
    pub async fn check(&self, config: &Path) -> Result<(), String> {
        let output = tokio::process::Command::new(&self.binary)
            .arg("-t")
            .arg("-q")
            .args(self.common_args(config))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|err| format!("cannot run {}: {err}", self.binary.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }

    /// The pid of this instance's master process, if it runs (possibly left by an earlier
    /// agent of the same droplet, which is then adopted).
    pub fn running_pid(&self) -> Option<i32> {
        let pid: i32 =
            std::fs::read_to_string(self.runtime.join("nginx.pid")).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let alive = !stat.contains(") Z ");
        let ours =
            String::from_utf8_lossy(&cmdline).contains(&*self.config_path().to_string_lossy());
        (alive && ours).then_some(pid)
    }

    /// Starts nginx with the installed configuration and waits until it listens.
    ///
    /// Workers of an nginx whose master died would keep the port and serve the old
    /// configuration, so any left in this agent's process group are killed first.
    pub async fn start(&self, listen: &str) -> Result<i32, String> {
        kill_strays();
        let log =
            std::fs::File::create(self.runtime.join("nginx.out")).map_err(|err| err.to_string())?;
        let log_err = log.try_clone().map_err(|err| err.to_string())?;
        let mut child = tokio::process::Command::new(&self.binary)
            .args(self.common_args(&self.config_path()))
            .arg("-g")
            .arg("daemon off;")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", self.binary.display()))?;
        let pid = child.id().map_or(0, |id| id as i32);

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let said =
                    std::fs::read_to_string(self.runtime.join("nginx.out")).unwrap_or_default();
                return Err(format!("nginx exited with {status}: {}", said.trim()));
            }
            // Ready once it listens and has written its pid file, which is how later checks
            // (and a restarted agent) recognise it.
            if tokio::net::TcpStream::connect(listen).await.is_ok() && self.running_pid().is_some()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(format!("nginx did not listen on {listen} within 10s"));
            }
            sleep(Duration::from_millis(25)).await;
        }
        // Reap nginx when it exits, so it never lingers as a zombie.
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::info!(?status, "nginx exited");
        });
        Ok(pid)
    }

    /// Asks a running nginx to load the installed configuration.
    pub fn reload(&self, pid: i32) -> Result<(), String> {
        signal::kill(Pid::from_raw(pid), Signal::SIGHUP)
            .map_err(|err| format!("cannot signal nginx {pid}: {err}"))
    }

    /// Stops nginx gracefully (in-flight requests complete), killing it after five seconds.
    pub async fn stop(&self) {
        let Some(pid) = self.running_pid() else {
            return;
        };
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running_pid().is_some() {
            if Instant::now() > deadline {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                break;
            }
            sleep(Duration::from_millis(25)).await;
        }
    }

    fn common_args(&self, config: &Path) -> Vec<std::ffi::OsString> {
        let prefix = format!("{}/", self.runtime.display());
        vec![
            "-p".into(),
            prefix.into(),
            "-e".into(),
            self.runtime.join("error.log").into(),
            "-c".into(),
            config.into(),
        ]
    }
}

/// Kills nginx processes left in this process group by an nginx master that died.
fn kill_strays() {
    let own_group = nix::unistd::getpgrp().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let is_nginx = head.ends_with("(nginx");
        // After the command name: state, parent, process group.
        let group = rest.split_whitespace().nth(2).and_then(|g| g.parse::<i32>().ok());
        if is_nginx && group == Some(own_group) {
            tracing::warn!(pid, "killing an nginx process left behind by a dead master");
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
