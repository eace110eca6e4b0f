//! The administrator's addresses: `ADMIN_IP` and `ADDITIONAL_IPS` from the environment or
//! `.env`, and `--update-ip`, which pins the administrator's address until the next
//! `--update-ip`.
//!
//! `.env` is read on every `--init` and `--orchestrate`, so an address removed there loses its
//! access on the next run.

use anyhow::Context as _;
use fleet::State;

use super::update_ip::parse_cidr;
use crate::environment::Environment;

/// The addresses `.env` (or the environment) asks for.
pub struct Wanted {
    pub admin_ip: Option<String>,
    pub additional: Vec<String>,
}

/// Reads `ADMIN_IP` and `ADDITIONAL_IPS`, refusing anything that is not an address or block.
pub fn wanted(env: &Environment) -> anyhow::Result<Wanted> {
    let admin_ip = env
        .get("ADMIN_IP")
        .map(|ip| parse_cidr(&ip).with_context(|| format!("ADMIN_IP ({})", env.origin("ADMIN_IP"))))
        .transpose()?;
    let additional = match env.get("ADDITIONAL_IPS") {
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|ip| {
                parse_cidr(ip)
                    .with_context(|| format!("ADDITIONAL_IPS ({})", env.origin("ADDITIONAL_IPS")))
            })
            .collect::<anyhow::Result<_>>()?,
        None => Vec::new(),
    };
    Ok(Wanted { admin_ip, additional })
}

/// Brings the state's addresses in line with what is wanted; says what it did.
pub fn sync(state: &mut State, wanted: Wanted) -> String {
    let mut said = Vec::new();
    match (wanted.admin_ip, state.admin_ip.clone()) {
        (Some(asked), Some(pinned)) if state.admin_ip_pinned => {
            if asked != pinned {
                said.push(format!("kept {pinned} (set by --update-ip; ADMIN_IP says {asked})"));
            } else {
                said.push(format!("administrator {pinned}"));
            }
        }
        (Some(asked), _) => {
            said.push(format!("administrator {asked}"));
            state.admin_ip = Some(asked);
        }
        (None, Some(current)) => said.push(format!("administrator {current}")),
        (None, None) => said.push("ADMIN_IP is not set; set it in .env or run --update-ip".into()),
    }
    if state.additional_ips != wanted.additional {
        state.additional_ips = wanted.additional;
    }
    if !state.additional_ips.is_empty() {
        said.push(format!("additional {}", state.additional_ips.join(", ")));
    }
    said.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(admin: Option<&str>, additional: &[&str]) -> Wanted {
        Wanted {
            admin_ip: admin.map(str::to_string),
            additional: additional.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn dotenv_changes_take_effect_and_removed_addresses_go() {
        let mut state = State::default();
        sync(&mut state, wanted(Some("198.51.100.1/32"), &["203.0.113.0/24"]));
        sync(&mut state, wanted(Some("198.51.100.2/32"), &[]));
        assert_eq!(state.admin_ip.as_deref(), Some("198.51.100.2/32"));
        assert!(state.additional_ips.is_empty());
    }

    #[test]
    fn an_address_set_by_update_ip_wins_over_dotenv() {
        let mut state = State {
            admin_ip: Some("203.0.113.9/32".into()),
            admin_ip_pinned: true,
            ..State::default()
        };
        let said = sync(&mut state, wanted(Some("198.51.100.1/32"), &[]));
        assert_eq!(state.admin_ip.as_deref(), Some("203.0.113.9/32"));
        assert_eq!(said, "kept 203.0.113.9/32 (set by --update-ip; ADMIN_IP says 198.51.100.1/32)");
    }
}
