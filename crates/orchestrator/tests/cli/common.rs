//! A fleet in a temporary directory, driven through the binary, cleaned up on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use orchestrator::provider::local::LocalCloud;

pub const BINARY: &str = env!("CARGO_BIN_EXE_orchestrator");

/// One test's fleet: its own directory, its own local cloud, its own addresses.
pub struct TestFleet {
    dir: tempfile::TempDir,
}

impl TestFleet {
    /// An empty directory.
    pub fn empty() -> TestFleet {
        TestFleet { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    /// A directory where `--setup` has written the example and `--init` made the keys.
    pub fn example() -> TestFleet {
        let fleet = TestFleet::configured();
        fleet.ok(&["--init"]);
        fleet
    }

    /// A directory where `--setup` has written the example, before `--init`.
    pub fn configured() -> TestFleet {
        let fleet = TestFleet::empty();
        fleet.ok(&["--setup"]);
        fleet
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with `args`, to run here with a private home directory and no terminal.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.path().join("home"))
            .env_remove("ADMIN_IP")
            .env_remove("ADDITIONAL_IPS")
            .env_remove("SMTP_PASSWORD")
            .env_remove("SMS_AUTH_TOKEN")
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary here with a private home directory and no terminal.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    /// Runs and expects success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs and expects failure; returns standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "{args:?} succeeded:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).expect("UTF-8 output")
    }

    /// Runs with `--json` and parses standard output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("JSON output")
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creates");
        std::fs::write(path, contents).expect("writes");
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).expect("reads")
    }

    pub fn state(&self) -> fleet::State {
        serde_json::from_str(&self.read("config/infrastructure.json")).expect("a valid state file")
    }

    /// Every file under the directory with its contents, to prove nothing changed.
    pub fn files(&self) -> Files {
        let mut files = BTreeMap::new();
        let mut pending = vec![self.path().to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("lists").filter_map(Result::ok) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if !is_droplet_activity(&path) {
                    files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        Files(files)
    }

    /// The process ids of this fleet's running agents.
    pub fn agent_pids(&self) -> Vec<i32> {
        let droplets = self.path().join(".local-cloud/droplets");
        let Ok(entries) = std::fs::read_dir(droplets) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                orchestrator::provider::local::manifest::running_agent(&entry.path())
            })
            .collect()
    }

    /// Answers of `GET /health` from every droplet in the state, by name.
    pub fn health(&self) -> BTreeMap<String, String> {
        let state = self.state();
        state
            .droplets
            .iter()
            .map(|(name, droplet)| {
                (
                    name.clone(),
                    http_get(&format!("http://{}:{}/health", droplet.ip, droplet.agent_port)),
                )
            })
            .collect()
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        let root = self.path().join(".local-cloud");
        if root.exists()
            && let Ok(cloud) = LocalCloud::new(&root, Path::new(BINARY), None)
        {
            cloud.kill_all();
        }
    }
}

/// What running droplets write on their own (logs, event logs, nginx's runtime files): no
/// command's doing, so left out when checking that a command changed nothing.
fn is_droplet_activity(path: &Path) -> bool {
    let text = path.to_string_lossy();
    path.ends_with("agent.log") || text.contains("/data/events.json") || text.contains("/run/lb/")
}

/// Every file of a test directory with its contents.
#[derive(PartialEq, Eq)]
pub struct Files(pub BTreeMap<PathBuf, Vec<u8>>);

impl Files {
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains_key(path)
    }
}

/// Names the files that differ, rather than dumping their bytes.
impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(path, bytes)| (path, bytes.len()))).finish()
    }
}

/// Asserts that no file was added, removed or changed, naming any that were.
pub fn assert_unchanged(before: &Files, after: &Files) {
    let changed: Vec<&PathBuf> = before
        .0
        .keys()
        .chain(after.0.keys())
        .filter(|path| before.0.get(*path) != after.0.get(*path))
        .collect();
    assert!(changed.is_empty(), "files changed: {changed:?}");
}

/// A plain HTTP GET with a short timeout; the body, or the error as text.
pub fn http_get(url: &str) -> String {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let client = orchestrator::http::client();
        match client.get(url).timeout(std::time::Duration::from_secs(2)).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(err) => format!("error: {err}"),
        }
    })
}

/// The example CSV with one row changed.
pub fn csv(rows: &[&str]) -> String {
    let mut text = String::from("Project,Servers,MasterSpec,WebSpec\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// A plain HTTP server answering every path with one text, standing in for a deployed
/// service; stopped when dropped.
pub struct TextServer {
    _server: Background,
}

impl TextServer {
    pub fn start(address: &str, port: u16, text: &str) -> TextServer {
        let listener =
            std::net::TcpListener::bind((address, port)).expect("the service port is free");
        let text = text.to_string();
        let app = axum::Router::new().fallback(move || {
            let text = text.clone();
            async move { text }
        });
        TextServer { _server: Background::serve_on(listener, app) }
    }
}

/// An HTTP server on a thread of its own; stopped when dropped.
pub struct Background {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Serves `app` on a free port of `address`; returns where.
    pub fn serve(address: &str, app: axum::Router) -> (Background, std::net::SocketAddr) {
        let listener = std::net::TcpListener::bind((address, 0)).expect("a free port");
        let bound = listener.local_addr().expect("bound");
        (Background::serve_on(listener, app), bound)
    }

    pub fn serve_on(listener: std::net::TcpListener, app: axum::Router) -> Background {
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Background { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a program the tests drive is installed; outside CI a missing one skips the test
/// with a notice, in CI it fails it.
pub fn have(program: &str, found: bool) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is required in CI; scripts/test.sh installs it"
        );
        eprintln!("skipped: {program} is not installed (scripts/test.sh installs it as root)");
    }
    found
}

/// Asserts `secret` is in no file of the fleet but `.env` and the configuration files of
/// infrastructure services under a droplet's `run/` (which snapshots leave out), and in no
/// argument list of an agent or anything it started.
pub fn assert_secret_kept(fleet: &TestFleet, secret: &str) {
    for (path, bytes) in &fleet.files().0 {
        let service_config = path.extension().is_some_and(|e| e == "conf")
            && path.to_string_lossy().contains("/run/infrastructure/");
        if path.ends_with(".env") || service_config {
            continue;
        }
        assert!(
            !String::from_utf8_lossy(bytes).contains(secret),
            "{} holds a secret in clear",
            path.display()
        );
    }
    for pid in fleet.agent_pids() {
        for process in descendants(pid) {
            let arguments = std::fs::read(format!("/proc/{process}/cmdline")).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&arguments).contains(secret),
                "a secret in the arguments of process {process}"
            );
        }
    }
}

/// `pid` and every process below it.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut index = 0;
    while index < all.len() {
        let parent = all[index];
        let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        all.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
        index += 1;
    }
    all
}

/// Waits up to `seconds` for `check` to hold, polling.
pub fn eventually(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {seconds}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
