//! Releases of the example project on the process platform: from a real Git repository (tags
//! pushed to a real bare remote), through real agents and the real nginx, without dropping a
//! request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::common::{TestFleet, eventually, http_get};

pub const SECRETS: &str = "DB_PASSWORD=db-Secret-4411\nSTRIPE_KEY=sk_Secret_8832\nOPENAI_API_KEY=oa-Secret-1177\n\
                       STRIPE_PUBLISHABLE_KEY=pk_Secret_2290\nSENDGRID_API_KEY=sg-Secret-5566\n\
                       REDIS_PASSWORD=redis-Secret-7781\n";

/// The example fleet, with hostomatic's code in a bare remote and its secrets in `.env`.
pub struct Project {
    pub fleet: TestFleet,
    pub work: PathBuf,
    pub remote: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.test",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("lists").filter_map(Result::ok) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copies");
        }
    }
}

impl Project {
    pub fn new() -> Project {
        Project::with_secrets(SECRETS)
    }

    /// The same, with `secrets` as `.env`.
    pub fn with_secrets(secrets: &str) -> Project {
        let fleet = TestFleet::example();
        let remote = fleet.path().join("remote/hostomatic.git");
        std::fs::create_dir_all(&remote).expect("creates");
        git(&remote, &["init", "--quiet", "--bare"]);
        let work = fleet.path().join("work");
        copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hostomatic"), &work);
        git(&work, &["init", "--quiet"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "--quiet", "-m", "hostomatic"]);
        git(&work, &["push", "--quiet", remote.to_str().expect("utf-8"), "HEAD:refs/heads/main"]);

        let path = fleet.path().join("config/deployment_config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
        config["git_config"] = serde_json::json!({
            "base_url": fleet.path().join("remote").display().to_string(),
            "url_pattern": "{base_url}/{project}.git"
        });
        std::fs::write(&path, config.to_string()).expect("writes");
        fleet.write(".env", secrets);
        fleet.ok(&["--orchestrate"]);
        Project { fleet, work, remote }
    }

    /// Commits a change to the project and pushes it.
    pub fn change(&self, file: &str, contents: &str) {
        std::fs::write(self.work.join(file), contents).expect("writes");
        git(&self.work, &["commit", "--quiet", "-am", &format!("change {file}")]);
        git(
            &self.work,
            &["push", "--quiet", self.remote.to_str().expect("utf-8"), "HEAD:refs/heads/main"],
        );
    }

    pub fn route(&self, environment: &str, service: &str) -> String {
        let master = self.fleet.state().droplets["master"].clone();
        format!("http://{}:8080/hostomatic/{environment}/{service}/", master.ip)
    }

    /// The version the backend of `environment` answers with through nginx.
    pub fn serving(&self, environment: &str) -> String {
        let answer = http_get(&self.route(environment, "backend"));
        let parsed: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        parsed["version"].as_str().unwrap_or_default().to_string()
    }

    pub fn releases(&self, environment: &str) -> serde_json::Value {
        self.fleet.json(&["--releases", "hostomatic", environment])
    }

    /// Gives the backend a quick health check: `retries` tries, a second apart.
    pub fn quick_backend_health(&self, retries: u32) {
        let path = self.fleet.path().join("config/deployment_config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
        config["projects"]["hostomatic"]["services"]["backend"]["health_check"] = serde_json::json!({
            "path": "/health", "interval_seconds": 1, "timeout_seconds": 1, "retries": retries
        });
        std::fs::write(&path, config.to_string()).expect("writes");
    }

    /// The record of `version` in UAT.
    pub fn uat_release(&self, version: &str) -> serde_json::Value {
        let releases = self.releases("uat");
        let found = releases["releases"].as_array().into_iter().flatten();
        found.into_iter().find(|r| r["version"] == version).expect("the release").clone()
    }

    /// The version UAT runs now.
    pub fn current_uat(&self) -> String {
        self.releases("uat")["current"].as_str().expect("a current release").to_string()
    }

    /// Commits a change to the backend and deploys it to UAT while clients send at least 2,000
    /// requests through nginx; asserts none failed and both versions answered, one after the
    /// other. Returns the new version.
    pub fn redeploy_under_load(&self, platform: &str) -> String {
        let first = self.current_uat();
        let app = std::fs::read_to_string(self.work.join("backend/app.py")).expect("reads");
        self.change("backend/app.py", &format!("{app}\n# next\n"));
        let load = Load::start(self.route("uat", "backend"));
        eventually(30, "some requests before the deploy", || load.sent() > 300);
        self.fleet.ok(&["--deploy-uat", "hostomatic"]);
        let second = self.current_uat();
        let floor = load.sent() + 300;
        eventually(60, "2,000 requests in all, some after the deploy", || {
            load.sent() >= floor.max(2_000)
        });
        let (sent, failed, versions) = load.finish();
        eprintln!("{platform}: {sent} requests during the redeploy, {failed} failed: {versions:?}");
        assert_eq!(failed, 0, "no request failed");
        assert!(sent >= 2_000);
        assert_eq!(versions, vec![first, second.clone()], "both versions, one after the other");
        second
    }

    /// Deploys to UAT a backend that logs a line with a secret, then answers its health check
    /// with 500, while clients send requests; asserts none failed and only the version before
    /// answered. Returns what the refused deploy said.
    pub fn broken_release_under_load(&self) -> String {
        let serving = self.current_uat();
        let app = std::fs::read_to_string(self.work.join("backend/app.py")).expect("reads");
        let broken = app
            .replace(
                "if self.path == \"/health\":",
                "if self.path == \"/health\":\n            self.send_error(500, \"database \
                 unreachable\")\n            return",
            )
            .replace(
                "def main():",
                "def main():\n    print(\"connecting to the database failed with\", \
                 os.environ[\"DB_PASSWORD\"], flush=True)",
            );
        self.change("backend/app.py", &broken);
        let load = Load::start(self.route("uat", "backend"));
        eventually(30, "requests flowing", || load.sent() > 200);
        let refused = self.fleet.fails(&["--deploy-uat", "hostomatic"]);
        let (sent, failed, versions) = load.finish();
        assert!(refused.contains("/health last answered: HTTP 500"), "{refused}");
        assert!(
            refused.contains("connecting to the database failed with [redacted]"),
            "the service's log is shown, its secrets blotted out: {refused}"
        );
        assert!(!refused.contains("db-Secret-4411"));
        assert!(refused.contains("keeps serving"), "{refused}");
        assert_eq!(failed, 0, "{sent} requests while the broken version was tried, none failed");
        assert_eq!(versions, vec![serving.clone()]);
        assert_eq!(self.serving("uat"), serving);
        assert_eq!(self.current_uat(), serving);
        refused
    }
}

/// Requests through nginx from several clients until stopped: how many, and how many failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    versions: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(url: String) -> Load {
        orchestrator::http::install_crypto_provider();
        let (stop, sent, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let versions = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let (s, n, f, v) =
            (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&failed), Arc::clone(&versions));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                // A fresh connection per request, as in the load balancer's reload test: an idle
                // connection that nginx closes as an old worker retires (a reload after a target
                // leaves or rejoins rotation) is a client-side race, not a dropped request.
                let client =
                    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a client");
                let mut clients = tokio::task::JoinSet::new();
                for _ in 0..4 {
                    let (client, url, s, n, f, v) = (
                        client.clone(),
                        url.clone(),
                        Arc::clone(&s),
                        Arc::clone(&n),
                        Arc::clone(&f),
                        Arc::clone(&v),
                    );
                    clients.spawn(async move {
                        while !s.load(Ordering::SeqCst) {
                            n.fetch_add(1, Ordering::SeqCst);
                            let answer = client
                                .get(&url)
                                .timeout(std::time::Duration::from_secs(10))
                                .send()
                                .await;
                            match answer {
                                Ok(answer) if answer.status().is_success() => {
                                    let body: serde_json::Value =
                                        answer.json().await.unwrap_or_default();
                                    if let Some(version) = body["version"].as_str() {
                                        v.lock().expect("not poisoned").insert(version.to_string());
                                    }
                                }
                                Ok(answer) => {
                                    eprintln!("failed request: HTTP {}", answer.status());
                                    f.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(err) => {
                                    eprintln!("failed request: {err}");
                                    f.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                    });
                }
                while clients.join_next().await.is_some() {}
            });
        });
        Load { stop, sent, failed, versions, thread: Some(thread) }
    }

    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops the clients; returns (sent, failed, versions seen).
    pub fn finish(mut self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread ends");
        }
        let versions = self.versions.lock().expect("not poisoned").iter().cloned().collect();
        (self.sent(), self.failed.load(Ordering::SeqCst), versions)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Neither a secret value nor anything but `.env` holds one.
pub fn assert_no_secret_outside_env(fleet: &TestFleet, said: &str) {
    let values = SECRETS.lines().filter_map(|l| l.split_once('=').map(|(_, v)| v));
    for value in values {
        assert!(!said.contains(value), "a secret in the output");
        crate::common::assert_secret_kept(fleet, value);
    }
}

#[test]
fn uat_from_git_is_promoted_by_tag_rolled_back_and_reproduced() {
    let project = Project::new();
    let fleet = &project.fleet;

    let said = fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.releases("uat")["current"].as_str().expect("a current release").to_string();
    assert!(first.starts_with("v0.0.1-uat-"), "{first}");
    assert!(said.contains(&format!("Tagged {first} and pushed the tag.")), "{said}");
    assert!(said.contains("db_password from DB_PASSWORD (global)"), "{said}");
    let remote_tags = git(&project.remote, &["tag", "--list"]);
    assert!(remote_tags.contains(&first), "the tag is on the remote: {remote_tags}");
    eventually(20, "UAT serving the first release", || project.serving("uat") == first);
    let page = http_get(&project.route("uat", "frontend"));
    assert!(page.contains("<h1>hostomatic</h1>"), "{page}");

    // A second UAT release, then production gets the first by tag: the same artifacts.
    project.change(
        "backend/app.py",
        &format!(
            "{}\n# second\n",
            std::fs::read_to_string(project.work.join("backend/app.py")).expect("reads")
        ),
    );
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let second = project.releases("uat")["current"].as_str().expect("current").to_string();
    assert!(second.starts_with("v0.0.2-uat-"), "{second}");
    eventually(20, "UAT serving the second release", || project.serving("uat") == second);

    // The configuration changes after UAT ran the release: production still runs it as UAT did.
    let path = fleet.path().join("config/deployment_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
    config["projects"]["hostomatic"]["services"]["backend"]["command"] =
        "python3 -X dev app.py".into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let said = fleet.ok(&["--deploy-prod", "hostomatic", "--tag", &first]);
    assert!(said.contains("nothing was rebuilt"), "{said}");
    eventually(20, "production serving the first release", || project.serving("prod") == first);
    let prod = project.releases("prod");
    let uat_first = project.uat_release(&first);
    assert_eq!(
        prod["releases"][0]["artifacts"], uat_first["artifacts"],
        "production runs UAT's artifacts"
    );
    assert_eq!(prod["releases"][0]["services"], uat_first["services"], "started as UAT started it");
    assert_eq!(prod["releases"][0]["config_hash"], uat_first["config_hash"]);
    let dev_mode = fleet.agent_pids().into_iter().flat_map(crate::common::descendants).any(|pid| {
        let arguments = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&arguments).contains("-X\0dev")
    });
    assert!(!dev_mode, "production runs the command UAT ran, not the one configured since");
    assert_eq!(prod["releases"][0]["promoted_from"], format!("hostomatic-uat {first}"));
    let unknown =
        fleet.fails(&["--deploy-prod", "hostomatic", "--tag", "v9.9.9-uat-20200101-0000"]);
    assert!(unknown.contains("is not a release that served in hostomatic-uat"), "{unknown}");

    // Back to the first release in UAT.
    let said = fleet.ok(&["--rollback", "hostomatic", "uat"]);
    assert!(said.contains("Rolled back; nothing was rebuilt."), "{said}");
    eventually(20, "UAT back on the first release", || project.serving("uat") == first);
    assert_eq!(project.releases("uat")["current"], first.as_str());
    fleet.ok(&["--rollback", "hostomatic", "uat", &second]);
    eventually(20, "UAT forward again", || project.serving("uat") == second);

    // The tag rebuilds the very artifacts.
    let dir = fleet.path().join("reproduced");
    let reproduced =
        fleet.json(&["--reproduce", &first, "--reproduce-dir", dir.to_str().expect("utf-8")]);
    assert!(
        reproduced["artifacts"].as_array().expect("list").iter().all(|a| a["matches"] == true),
        "{reproduced}"
    );
    assert!(dir.join("backend/app.py").is_file());
    assert!(
        !std::fs::read_to_string(dir.join("backend/app.py")).expect("reads").contains("# second")
    );
    let again =
        fleet.fails(&["--reproduce", &first, "--reproduce-dir", dir.to_str().expect("utf-8")]);
    assert!(again.contains("exists and is not empty"), "{again}");

    assert_no_secret_outside_env(fleet, &said);
}

#[test]
fn a_redeploy_drops_no_request_through_nginx() {
    let project = Project::new();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.current_uat();
    eventually(20, "UAT serving", || project.serving("uat") == first);
    project.redeploy_under_load("process");
}

#[test]
fn a_version_that_never_turns_healthy_is_stopped_while_the_old_one_serves() {
    let project = Project::new();
    project.quick_backend_health(3);
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.releases("uat")["current"].as_str().expect("current").to_string();
    eventually(20, "UAT serving", || project.serving("uat") == first);

    let refused = project.broken_release_under_load();
    assert!(
        refused.contains("backend on web1: backend did not pass its health check after 3 tries"),
        "{refused}"
    );
    let releases = project.releases("uat");
    assert!(releases["releases"][0]["outcome"]["failed"]["reason"].is_string(), "{releases}");
    let tags = git(&project.remote, &["tag", "--list"]);
    assert_eq!(tags.lines().count(), 1, "a failed release is not tagged: {tags}");
}

#[test]
fn a_missing_secret_stops_the_deploy_before_anything_changes() {
    let project = Project::new();
    project.fleet.write(".env", SECRETS.replace("STRIPE_KEY=sk_Secret_8832\n", ""));
    let before = project.fleet.files();
    let refused = project.fleet.fails(&["--deploy-uat", "hostomatic"]);
    assert!(
        refused.contains(
            "secret stripe_key of hostomatic-uat is not set; set one of HOSTOMATIC_UAT_STRIPE_KEY, \
             HOSTOMATIC_STRIPE_KEY, UAT_STRIPE_KEY, STRIPE_KEY"
        ),
        "{refused}"
    );
    crate::common::assert_unchanged(&before, &project.fleet.files());
    assert!(git(&project.remote, &["tag", "--list"]).is_empty());
}

#[test]
fn a_local_tree_deploys_without_a_tag_and_a_crashed_service_comes_back() {
    let project = Project::new();
    let work = project.work.to_str().expect("utf-8");
    let said = project.fleet.ok(&["--deploy-uat", "hostomatic", "--local", "--project-path", work]);
    assert!(said.contains("no tag was pushed"), "{said}");
    let release = project.releases("uat")["releases"][0].clone();
    assert!(release["version"].as_str().expect("version").starts_with("local-"), "{release}");
    assert_eq!(release["local_tree"]["path"], work);
    assert_eq!(release["commit"].as_str().map(str::len), Some(40), "the tree's HEAD: {release}");
    assert!(git(&project.remote, &["tag", "--list"]).is_empty());

    // A service that dies is started again by its agent.
    let web1 = project.fleet.state().droplets["web1"].clone();
    let services: serde_json::Value = serde_json::from_str(&http_get(&format!(
        "http://{}:{}/services",
        web1.ip, web1.agent_port
    )))
    .expect("json");
    let backend = services
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["project_env"] == "hostomatic-uat" && s["service"] == "backend")
        .expect("backend")
        .clone();
    let pid = backend["pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kills");
    eventually(20, "the backend started again", || {
        let services: serde_json::Value = serde_json::from_str(&http_get(&format!(
            "http://{}:{}/services",
            web1.ip, web1.agent_port
        )))
        .unwrap_or_default();
        services.as_array().into_iter().flatten().any(|s| {
            s["service"] == "backend"
                && s["project_env"] == "hostomatic-uat"
                && s["restarts"] == 1
                && s["state"] == "running"
        })
    });
    eventually(20, "UAT serving again", || project.serving("uat").starts_with("local-"));
}

#[test]
fn a_replaced_droplet_comes_back_running_the_release_from_its_snapshot() {
    let project = Project::new();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let release = project.releases("uat")["current"].as_str().expect("current").to_string();
    let before = project.fleet.state().droplets["web1"].clone();
    let id = before.id.clone();
    let dir = project.fleet.path().join(".local-cloud/droplets").join(id);
    let dir = dir.canonicalize().expect("the droplet's directory");
    let pid = orchestrator::provider::local::manifest::running_agent(&dir).expect("runs");
    let services = working_inside(&dir);
    assert!(!services.is_empty(), "web1 runs the release's services");
    // The agent alone, as a crash would take it: its services are left running.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kills");

    // The replacement is restored from the snapshot taken after the release.
    eventually(60, "web1 replaced and serving the release", || {
        let status = project.fleet.json(&["--status"]);
        let web1 = status["droplets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["name"] == "web1")
            .cloned()
            .unwrap_or_default();
        if web1["ip"] == before.ip.as_str() || web1["health"] != "healthy" {
            return false;
        }
        let ip = web1["ip"].as_str().unwrap_or_default();
        let direct: serde_json::Value =
            serde_json::from_str(&http_get(&format!("http://{ip}:{}/services", before.agent_port)))
                .unwrap_or_default();
        direct.as_array().into_iter().flatten().any(|s| {
            s["service"] == "backend" && s["version"] == release.as_str() && s["state"] == "running"
        })
    });
    eventually(20, "UAT serving through nginx", || project.serving("uat") == release);
    assert_eq!(working_inside(&dir), Vec::<i32>::new(), "nothing of the old web1 runs on");
}

/// Processes whose working directory is in `dir`, even after `dir` was removed.
fn working_inside(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let prefix = dir.display().to_string();
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .is_ok_and(|cwd| cwd.display().to_string().starts_with(&prefix))
        })
        .collect()
}

#[test]
fn bad_deploy_requests_are_refused_naming_what_is_wrong() {
    let project = Project::new();
    let fleet = &project.fleet;
    let before = fleet.files();
    for (args, expected) in [
        (&["--deploy-uat", "hostomatic", "--tag", "v1"][..], "--tag goes with --deploy-prod"),
        (
            &["--deploy-prod", "hostomatic", "--local", "--project-path", "."][..],
            "--local goes with --deploy-uat",
        ),
        (&["--deploy-uat", "hostomatic", "--local"][..], "--project-path"),
        (&["--releases", "nosuch", "prod"][..], "nosuch is not a project"),
    ] {
        let refused = fleet.fails(args);
        assert!(refused.contains(expected), "{args:?}: {refused}");
    }
    let unknown = fleet.fails(&["--deploy-uat", "nosuch"]);
    assert!(unknown.contains("nosuch is not a project in"), "{unknown}");
    assert!(unknown.contains("hostomatic"), "the projects there are: {unknown}");
    let branch = fleet.fails(&["--deploy-uat", "hostomatic", "--branch", "nosuch"]);
    assert!(branch.contains("has no branch \"nosuch\""), "{branch}");
    let nothing = fleet.fails(&["--deploy-prod", "hostomatic"]);
    assert!(
        nothing.contains("hostomatic-uat has no release yet; run --deploy-uat hostomatic first"),
        "{nothing}"
    );
    let back = fleet.fails(&["--rollback", "hostomatic", "prod"]);
    assert!(back.contains("hostomatic-prod has no earlier release to go back to"), "{back}");
    assert!(!back.contains("Secrets:"), "a refusal says nothing of where secrets came from");
    let environment = fleet.fails(&["--rollback", "hostomatic", "staging"]);
    assert!(
        environment.contains("hostomatic has no staging environment (it has: prod, uat)"),
        "{environment}"
    );
    let tag = fleet.fails(&["--reproduce", "v1.0.0-uat-20260101-0000", "--reproduce-dir", "out"]);
    assert!(tag.contains("no release tagged v1.0.0-uat-20260101-0000"), "{tag}");
    let local =
        fleet.fails(&["--deploy-uat", "hostomatic", "--local", "--project-path", "missing"]);
    assert!(local.contains("--project-path missing is not a directory"), "{local}");

    fleet.write("templates/process.sh.j2", "exec {{ comand }}\n");
    let template = fleet.fails(&["--deploy-uat", "hostomatic"]);
    assert!(template.contains("templates/process.sh.j2, line 1:"), "{template}");
    // Only the template written above, and the cache of the remote's history, differ.
    let kept = |files: crate::common::Files| {
        crate::common::Files(
            files
                .0
                .into_iter()
                .filter(|(p, _)| {
                    !p.ends_with("process.sh.j2")
                        && !p.to_string_lossy().contains(".orchestrator/repos")
                })
                .collect(),
        )
    };
    crate::common::assert_unchanged(&kept(before), &kept(fleet.files()));

    let path = fleet.path().join("config/deployment_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
    for outside in ["../../", "/etc/", "backend/../../x"] {
        config["projects"]["hostomatic"]["services"]["backend"]["build_context"] = outside.into();
        std::fs::write(&path, config.to_string()).expect("writes");
        let refused = fleet.fails(&["--deploy-uat", "hostomatic"]);
        assert!(
            refused.contains("at projects.hostomatic.services.backend.build_context")
                && refused.contains("inside the project's tree"),
            "{outside}: {refused}"
        );
    }
}

#[test]
fn a_secret_removed_after_a_release_is_an_issue_of_that_project_environment() {
    let project = Project::new();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    project.fleet.write(".env", SECRETS.replace("STRIPE_KEY=sk_Secret_8832\n", ""));
    let status = project.fleet.json(&["--status"]);
    let issues: Vec<&str> =
        status["issues"].as_array().expect("a list").iter().filter_map(|i| i.as_str()).collect();
    let expected = "hostomatic-uat cannot be deployed again: secret(s) stripe_key not set";
    assert!(issues.iter().any(|i| i.starts_with(expected)), "{issues:?}");
    assert!(
        !issues.iter().any(|i| i.starts_with("hostomatic-prod")),
        "production never ran a release, so its missing secrets are a list, not an issue"
    );
}

#[test]
fn a_deploy_interrupted_part_way_puts_the_droplets_back_and_records_the_release_failed() {
    let project = Project::new();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.current_uat();
    // A version that takes a few seconds to answer, so the interruption finds web2 moving.
    let app = std::fs::read_to_string(project.work.join("backend/app.py")).expect("reads");
    project.change("backend/app.py", &format!("import time\ntime.sleep(3)\n{app}"));
    let backend_on = |droplet: &str| {
        let record = project.fleet.state().droplets[droplet].clone();
        let url = format!("http://{}:{}/services", record.ip, record.agent_port);
        let services: serde_json::Value = serde_json::from_str(&http_get(&url)).unwrap_or_default();
        services
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["project_env"] == "hostomatic-uat" && s["service"] == "backend")
            .map(|s| s["version"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let deploy = project
        .fleet
        .command(&["--deploy-uat", "hostomatic"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    eventually(60, "web1 on the new version", || backend_on("web1") != first);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(deploy.id()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupts");
    let output = deploy.wait_with_output().expect("ends");
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("interrupted"), "{said}");
    eventually(30, "both droplets back on the release before", || {
        backend_on("web1") == first && backend_on("web2") == first
    });
    let releases = project.releases("uat");
    assert_eq!(releases["current"], first.as_str(), "{releases}");
    let newest = &releases["releases"][0];
    assert!(
        newest["outcome"]["failed"]["reason"].to_string().contains("interrupted"),
        "{releases}"
    );
}

#[test]
fn scaling_up_carries_the_serving_release_to_the_new_droplet_without_dropping_a_request() {
    let project = Project::new();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let serving = project.current_uat();
    let load = Load::start(project.route("uat", "backend"));
    eventually(30, "some requests first", || load.sent() > 200);
    let said = project.fleet.ok(&["--scale", "hostomatic", "4"]);
    assert!(
        said.contains(&format!("hostomatic-uat: {serving} runs where it is placed now")),
        "{said}"
    );
    let floor = load.sent() + 300;
    eventually(60, "requests after the scale", || load.sent() >= floor);
    let (sent, failed, versions) = load.finish();
    eprintln!("{sent} requests while scaling up, {failed} failed");
    assert_eq!(failed, 0, "no request failed");
    assert_eq!(versions, vec![serving.clone()]);
    let uat = &project.fleet.state().projects["hostomatic-uat"];
    assert!(uat["backend"].assigned_droplets.contains(&"web3".to_string()), "{uat:?}");
    let web3 = project.fleet.state().droplets["web3"].clone();
    let url = format!("http://{}:{}/services", web3.ip, web3.agent_port);
    let services: serde_json::Value = serde_json::from_str(&http_get(&url)).unwrap_or_default();
    assert!(
        services.as_array().into_iter().flatten().any(|s| s["project_env"] == "hostomatic-uat"
            && s["service"] == "backend"
            && s["version"] == serving.as_str()),
        "web3 runs the serving release: {services}"
    );
    let releases = project.releases("uat");
    assert_eq!(releases["releases"][0]["placed_anew"], true, "{releases}");
    assert_eq!(releases["current"], serving.as_str());
}
