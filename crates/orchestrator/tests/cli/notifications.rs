//! Alerts and heartbeats reach people: mail through a real SMTP server that requires STARTTLS
//! and a password, and SMS through a simulated gateway with the common providers' API shape.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use orchestrator::provider::local::manifest::running_agent;

use crate::common::{TestFleet, eventually, have};

const SMTP_PASSWORD: &str = "s3cret-smtp-Pa55";
const SMS_TOKEN: &str = "tok_9f8e7d6c5b4a";
const ACCOUNT: &str = "AC0123456789";

/// aiosmtpd from Debian on a port of its own, keeping each message as a file.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    dir: tempfile::TempDir,
}

/// One message the SMTP server took.
#[derive(Debug, Clone)]
struct Mail {
    session: String,
    to: String,
    subject: String,
    body: String,
}

impl SmtpServer {
    fn start() -> Option<SmtpServer> {
        let found = Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have("python3-aiosmtpd", found) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let openssl = |args: &str| {
            let output = Command::new("openssl")
                .args(args.split_whitespace())
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        };
        // A private authority, and a certificate it signs for 127.0.0.1.
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(&format!("req -x509 {key} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca"));
        openssl(&format!("req {key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"));
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("writes");
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
             -days 2 -extfile ext.cnf",
        );
        let maildir = dir.path().join("mail");
        std::fs::create_dir(&maildir).expect("creates");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/smtp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&maildir)
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .arg("alerts@example.test")
            .env("SMTP_TEST_PASSWORD", SMTP_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the SMTP server starts");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .expect("the SMTP server says its port");
        let port = first.trim().parse().expect("a port number");
        Some(SmtpServer { child, port, maildir, dir })
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn mail(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.maildir)
            .expect("lists")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("reads");
                let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .unwrap_or_default()
                        .to_string()
                };
                Mail {
                    session: field("Session"),
                    to: field("To"),
                    subject: field("Subject"),
                    body: body.to_string(),
                }
            })
            .collect()
    }

    fn heartbeats(&self) -> Vec<Mail> {
        self.mail().into_iter().filter(|m| m.subject.contains("] heartbeat ")).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One text the gateway took.
#[derive(Debug, Clone)]
struct Text {
    to: String,
    from: String,
    body: String,
}

/// An SMS gateway answering like the common providers: form-encoded `To`, `From` and `Body`,
/// basic authentication with the account id and token, `201` with the message's JSON.
struct SmsGateway {
    url: String,
    texts: Arc<Mutex<Vec<Text>>>,
    refused: Arc<Mutex<u32>>,
    _server: crate::common::Background,
}

impl SmsGateway {
    fn start() -> SmsGateway {
        use axum::extract::{Form, State};
        use axum::http::{HeaderMap, StatusCode};

        type Shared = (Arc<Mutex<Vec<Text>>>, Arc<Mutex<u32>>);
        async fn messages(
            State((texts, refused)): State<Shared>,
            headers: HeaderMap,
            Form(form): Form<std::collections::HashMap<String, String>>,
        ) -> (StatusCode, axum::Json<serde_json::Value>) {
            use base64::Engine;
            let credentials = format!("{ACCOUNT}:{SMS_TOKEN}");
            let expected =
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
            let given = headers.get("authorization").and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                *refused.lock().expect("not poisoned") += 1;
                let body =
                    serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401});
                return (StatusCode::UNAUTHORIZED, axum::Json(body));
            }
            let field = |name: &str| form.get(name).cloned().unwrap_or_default();
            let text = Text { to: field("To"), from: field("From"), body: field("Body") };
            texts.lock().expect("not poisoned").push(text.clone());
            let body = serde_json::json!({
                "sid": "SM0001", "status": "queued", "to": text.to, "from": text.from, "body": text.body,
            });
            (StatusCode::CREATED, axum::Json(body))
        }

        let texts = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let app = axum::Router::new()
            .route(
                &format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"),
                axum::routing::post(messages),
            )
            .with_state((Arc::clone(&texts), Arc::clone(&refused)));
        let (server, address) = crate::common::Background::serve("127.0.0.1", app);
        SmsGateway {
            url: format!("http://{address}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"),
            texts,
            refused,
            _server: server,
        }
    }

    fn texts(&self) -> Vec<Text> {
        self.texts.lock().expect("not poisoned").clone()
    }
}

/// Points the fleet's notifications at the test servers, with a heartbeat every `minutes`.
fn configure(fleet: &TestFleet, smtp: &SmtpServer, sms: &SmsGateway, minutes: f64) {
    std::fs::copy(smtp.ca(), fleet.path().join("config/mail-ca.pem")).expect("copies");
    fleet.write(
        "config/email_config.json",
        serde_json::json!({
            "provider": "smtp",
            "from_address": "alerts@example.test",
            "smtp_settings": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "use_tls": true,
                "username": "alerts@example.test",
                "password": "SMTP_PASSWORD",
                "ca_certificate": "mail-ca.pem"
            },
            "recipients": {"admin": "admin@example.test"},
            "heartbeat": {"interval_minutes": minutes}
        })
        .to_string(),
    );
    fleet.write(
        "config/sms_config.json",
        serde_json::json!({
            "enabled": true,
            "gateway_url": sms.url,
            "account_sid": ACCOUNT,
            "auth_token": "SMS_AUTH_TOKEN",
            "from_number": "+15550000000",
            "to_numbers": ["+15551234567"]
        })
        .to_string(),
    );
    fleet.write(".env", format!("SMTP_PASSWORD={SMTP_PASSWORD}\nSMS_AUTH_TOKEN={SMS_TOKEN}\n"));
}

fn agent_pid(fleet: &TestFleet, name: &str) -> i32 {
    let id = fleet.state().droplets[name].id.clone();
    running_agent(&fleet.path().join(".local-cloud/droplets").join(id)).expect("the agent runs")
}

/// Neither secret is in the output, any file of the fleet but `.env`, or any process's
/// arguments.
fn assert_secrets_kept(fleet: &TestFleet, said: &str) {
    for secret in [SMTP_PASSWORD, SMS_TOKEN] {
        assert!(!said.contains(secret));
        crate::common::assert_secret_kept(fleet, secret);
    }
}

#[test]
fn a_recovery_is_mailed_over_tls_and_texted_and_heartbeats_say_all_is_well() {
    let Some(smtp) = SmtpServer::start() else { return };
    let sms = SmsGateway::start();
    let fleet = TestFleet::example();
    configure(&fleet, &smtp, &sms, 0.05);
    let said = fleet.ok(&["--orchestrate"]);
    assert!(
        said.contains(
            "Notifications: alerts by email to admin@example.test; a heartbeat every 3 s from \
             master, then web1, then web2"
        ),
        "{said}"
    );
    assert!(said.contains("Notifications: alerts by SMS to +15551234567"), "{said}");

    // The first may come from a backup, if the fleet state reached master a moment late.
    eventually(20, "a heartbeat from master", || {
        smtp.heartbeats().iter().any(|m| m.body.contains("Sent by master, the primary sender."))
    });
    let heartbeat =
        smtp.heartbeats().into_iter().find(|m| m.body.contains("Sent by master")).expect("found");
    assert_eq!(heartbeat.session, "tls alerts@example.test", "STARTTLS and a login");
    assert_eq!(heartbeat.to, "admin@example.test");
    assert!(heartbeat.subject.contains("all 3 droplets answer"), "{heartbeat:?}");
    assert!(heartbeat.body.contains("Sent by master, the primary sender."), "{heartbeat:?}");
    for droplet in ["master", "web1", "web2"] {
        assert!(heartbeat.body.contains(droplet), "{heartbeat:?}");
    }
    assert!(sms.texts().is_empty(), "heartbeats are not texted");

    let before = fleet.state().droplets["web1"].ip.clone();
    signal::killpg(Pid::from_raw(agent_pid(&fleet, "web1")), Signal::SIGKILL).expect("kills");
    eventually(60, "a mail about web1's recovery", || {
        smtp.mail().iter().any(|m| m.subject.contains("web1 failed and was recovered"))
    });
    let alert = smtp
        .mail()
        .into_iter()
        .find(|m| m.subject.contains("web1 failed and was recovered"))
        .expect("found");
    for expected in [
        &format!("What happened: web1 (web droplet at {before}) stopped answering"),
        "What was done: web1 was taken out of the load balancer",
        "When: recovery began ",
        "Led by: ",
    ] {
        assert!(alert.body.contains(expected), "{expected:?} in {}", alert.body);
    }
    eventually(10, "a text about web1", || {
        sms.texts().iter().any(|t| t.body.contains("web1 failed and was recovered"))
    });
    let text = sms.texts().remove(0);
    assert_eq!((text.to.as_str(), text.from.as_str()), ("+15551234567", "+15550000000"));
    assert_eq!(*sms.refused.lock().expect("not poisoned"), 0);

    let heartbeats = smtp.heartbeats();
    let mut subjects: Vec<&str> = heartbeats.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort_unstable();
    let count = subjects.len();
    subjects.dedup();
    assert_eq!(subjects.len(), count, "one heartbeat per interval: {subjects:?}");

    let status = fleet.ok(&["--orchestrate"]);
    assert_secrets_kept(&fleet, &format!("{said}{status}"));
}

#[test]
fn a_backup_sends_the_heartbeat_while_the_primary_is_down_and_never_two_at_once() {
    let Some(smtp) = SmtpServer::start() else { return };
    let sms = SmsGateway::start();
    let fleet = TestFleet::example();
    configure(&fleet, &smtp, &sms, 0.05);
    fleet.ok(&["--orchestrate"]);
    eventually(20, "a heartbeat from master", || {
        smtp.heartbeats().iter().any(|m| m.body.contains("Sent by master, the primary sender."))
    });

    let killed_at = smtp.mail().len();
    signal::killpg(Pid::from_raw(agent_pid(&fleet, "master")), Signal::SIGKILL).expect("kills");
    let standing_in = |m: &Mail| m.body.contains("Sent by web1, standing in: master");
    eventually(30, "a heartbeat from a backup", || {
        smtp.mail()[killed_at..].iter().any(standing_in)
    });
    let standing_in =
        smtp.mail()[killed_at..].iter().find(|m| standing_in(m)).cloned().expect("found");
    assert!(standing_in.subject.contains("1 of 3 droplets not answering"), "{standing_in:?}");

    eventually(60, "master's recovery", || {
        smtp.mail().iter().any(|m| m.subject.contains("master failed and was recovered"))
    });
    let recovered_at = smtp.mail().len();
    eventually(30, "a heartbeat from the new master", || {
        smtp.mail()[recovered_at..]
            .iter()
            .any(|m| m.body.contains("Sent by master, the primary sender."))
    });

    let heartbeats = smtp.heartbeats();
    let mut subjects: Vec<String> = heartbeats
        .iter()
        .map(|m| m.subject.split(": ").next().unwrap_or_default().to_string())
        .collect();
    subjects.sort_unstable();
    let count = subjects.len();
    subjects.dedup();
    assert_eq!(subjects.len(), count, "one heartbeat per interval: {subjects:?}");
}

#[test]
fn a_wrong_smtp_password_is_reported_without_showing_it() {
    let Some(smtp) = SmtpServer::start() else { return };
    let sms = SmsGateway::start();
    let fleet = TestFleet::example();
    configure(&fleet, &smtp, &sms, 0.05);
    fleet.write(
        ".env",
        format!("SMTP_PASSWORD=wrong-{SMTP_PASSWORD}\nSMS_AUTH_TOKEN={SMS_TOKEN}\n"),
    );
    fleet.ok(&["--orchestrate"]);
    eventually(20, "a refused heartbeat in master's events", || {
        let status = fleet.json(&["--status"]);
        status.to_string().contains("not sent by email to admin@example.test")
    });
    let status = fleet.json(&["--status"]).to_string();
    assert!(!status.contains(SMTP_PASSWORD), "{status}");
    assert!(smtp.mail().is_empty());
}

#[test]
fn a_private_key_named_as_the_certificate_authority_is_refused() {
    let fleet = TestFleet::example();
    fleet.write(
        "config/server.key",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    );
    let config = fleet.read("config/email_config.json").replace(
        "\"use_tls\": true,",
        "\"use_tls\": true,\n    \"ca_certificate\": \"server.key\",",
    );
    fleet.write("config/email_config.json", config);
    let before = fleet.files();
    let refused = fleet.fails(&["--orchestrate"]);
    assert!(refused.contains("email_config.json at smtp_settings.ca_certificate"), "{refused}");
    assert!(refused.contains("holds a private key"), "{refused}");
    assert!(!refused.contains("MIIB"));
    crate::common::assert_unchanged(&before, &fleet.files());
}

#[test]
fn agents_get_none_of_the_administrators_environment() {
    let fleet = TestFleet::example();
    let output = Command::new(crate::common::BINARY)
        .arg("--orchestrate")
        .current_dir(fleet.path())
        .env("HOME", fleet.path().join("home"))
        .env("SMTP_PASSWORD", SMTP_PASSWORD)
        .env("SOME_TOKEN_OF_THE_ADMIN", SMS_TOKEN)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let pids = fleet.agent_pids();
    assert_eq!(pids.len(), 3);
    for pid in pids {
        let environment = std::fs::read(format!("/proc/{pid}/environ")).expect("readable");
        let environment = String::from_utf8_lossy(&environment);
        assert!(!environment.contains(SMTP_PASSWORD) && !environment.contains(SMS_TOKEN));
        assert!(environment.contains("PATH="));
    }
}
