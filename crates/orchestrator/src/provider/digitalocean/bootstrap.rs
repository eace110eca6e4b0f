//! The cloud-init user data that turns a fresh droplet into one of the fleet's.
//!
//! It writes the droplet's description and its copy of the fleet key (readable by root
//! alone), downloads the orchestrator binary from the configured URL, checks its SHA-256
//! before running anything, and installs the agent as a systemd service that restarts on
//! failure. The fleet key travels in the user data, which DigitalOcean shows only to the
//! droplet itself through its metadata service.

use crate::control::FleetKey;
use crate::provider::local::manifest::DropletManifest;

/// Where the agent keeps its droplet directory on a real droplet.
pub const DROPLET_DIR: &str = "/var/lib/orchestrator";

/// What the bootstrap needs beyond the droplet's description.
pub struct Bootstrap<'a> {
    pub agent_url: &'a str,
    pub agent_sha256: &'a str,
    pub fleet_key: &'a FleetKey,
}

/// The `#cloud-config` document for a droplet described by `manifest`.
pub fn user_data(bootstrap: &Bootstrap<'_>, manifest: &DropletManifest) -> String {
    let description = serde_json::to_string(manifest).expect("a manifest always serialises");
    let key = hex::encode(bootstrap.fleet_key.as_bytes());
    // Every value placed here is validated (names, hex digits, an https URL) or JSON, which
    // YAML reads as a flow value when quoted as a single-quoted scalar without quotes inside.
    format!(
        r#"#cloud-config
write_files:
  - path: {DROPLET_DIR}/droplet.json
    permissions: '0644'
    content: '{description}'
  - path: {DROPLET_DIR}/fleet.key
    permissions: '0600'
    content: '{key}'
  - path: /etc/systemd/system/orchestrator-agent.service
    permissions: '0644'
    content: |
      [Unit]
      Description=orchestrator agent for droplet {name}
      After=network-online.target
      Wants=network-online.target
      [Service]
      ExecStart=/usr/local/bin/orchestrator agent --droplet-dir {DROPLET_DIR}
      Restart=always
      RestartSec=2
      [Install]
      WantedBy=multi-user.target
packages:
  - nginx
runcmd:
  - [mkdir, -p, {DROPLET_DIR}/data]
  - [curl, -fsSL, --retry, '5', -o, /usr/local/bin/orchestrator.download, '{url}']
  - [sh, -c, 'echo "{sha}  /usr/local/bin/orchestrator.download" | sha256sum -c -']
  - [install, -m, '0755', /usr/local/bin/orchestrator.download, /usr/local/bin/orchestrator]
  - [systemctl, disable, --now, nginx]
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, orchestrator-agent.service]
"#,
        name = manifest.name,
        url = bootstrap.agent_url,
        sha = bootstrap.agent_sha256,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet::Role;

    #[test]
    fn the_user_data_checks_the_binary_before_running_it() {
        let key = FleetKey::generate();
        let manifest = DropletManifest {
            id: "0".into(),
            name: "web1".into(),
            role: Role::Web,
            size: "s-1vcpu-1gb".into(),
            region: "nyc3".into(),
            address: std::net::Ipv4Addr::UNSPECIFIED,
            agent_port: 7700,
            created_at: "2026-12-03T00:00:00Z".into(),
            tags: vec!["fleet:shop".into()],
        };
        let sha = "a".repeat(64);
        let text = user_data(
            &Bootstrap {
                agent_url: "https://example.com/orchestrator",
                agent_sha256: &sha,
                fleet_key: &key,
            },
            &manifest,
        );
        assert!(text.starts_with("#cloud-config\n"));
        let check = text.find("sha256sum -c").expect("a checksum step");
        let install = text.find("[install, -m").expect("an install step");
        assert!(check < install, "the checksum is verified before the binary is installed");
        assert!(text.contains(&hex::encode(key.as_bytes())));
        assert!(text.contains("\"name\":\"web1\""));
    }
}
