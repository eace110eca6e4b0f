//! `--update-ip IP`: record the administrator's address and rewrite the firewall with it.

use std::net::IpAddr;

use anyhow::bail;
use serde::Serialize;

use super::Context;
use crate::output;
use crate::provider::firewall;

#[derive(Serialize)]
struct Change {
    previous: Option<String>,
    admin_ip: String,
    dry_run: bool,
    firewall: String,
}

pub async fn run(context: &Context, address: &str) -> anyhow::Result<()> {
    let cidr = parse_cidr(address)?;
    let config = context.load_config()?;
    let lock = if context.dry_run { None } else { Some(context.lock("--update-ip")?) };
    let store = context.store();
    let mut state = store.load()?;
    let previous = state.admin_ip.replace(cidr.clone());
    let was_pinned = std::mem::replace(&mut state.admin_ip_pinned, true);

    let firewall = match &lock {
        None => "not changed (dry run)".to_string(),
        Some(lock) => {
            if previous.as_deref() != Some(cidr.as_str()) || !was_pinned {
                state.updated_at = Some(crate::clock::now_rfc3339());
                store.save(lock, &state)?;
            }
            let provider = context.provider(&config.deploy, &config.env, None)?;
            let policy = firewall::policy(
                &state,
                config.deploy.agent_port,
                config.deploy.load_balancer_port(),
            );
            match provider.apply_firewall(&policy).await? {
                Some(applied) => format!("rewritten: {applied}"),
                None => format!(
                    "the {} cloud has no firewall; the address is recorded for clouds that have one",
                    provider.name()
                ),
            }
        }
    };
    let change = Change { previous, admin_ip: cidr, dry_run: context.dry_run, firewall };
    if context.json {
        output::print_json(&change);
        return Ok(());
    }
    let verb = if context.dry_run { "Would record" } else { "Recorded" };
    let was = match &change.previous {
        Some(old) if *old == change.admin_ip => " (unchanged)".to_string(),
        Some(old) => format!(" (was {old})"),
        None => String::new(),
    };
    output::line(format_args!("{verb} administrator address {}{was}.", change.admin_ip));
    output::line(format_args!("Firewall: {}.", change.firewall));
    Ok(())
}

/// Accepts an IPv4 or IPv6 address or CIDR block; a bare address becomes a one-host block and
/// host bits are cleared (`192.0.2.5/24` is `192.0.2.0/24`).
pub fn parse_cidr(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let shown: String = text.chars().take(60).collect();
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(ip) = address.parse::<IpAddr>() else {
        bail!(
            "{shown:?} is not an IP address or CIDR block (such as 203.0.113.100 or 203.0.113.0/24)"
        );
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => bail!("{shown:?} has an invalid prefix length; it must be 0 to {max}"),
        },
    };
    if prefix == 0 || ip.is_unspecified() {
        bail!("{shown:?} would let the whole internet in; give your own address");
    }
    let network = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    };
    Ok(format!("{network}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_blocks() {
        assert_eq!(parse_cidr("203.0.113.100").expect("valid"), "203.0.113.100/32");
        assert_eq!(parse_cidr("203.0.113.0/24").expect("valid"), "203.0.113.0/24");
        assert_eq!(parse_cidr("203.0.113.77/24").expect("valid"), "203.0.113.0/24");
        assert_eq!(parse_cidr("2001:db8::1").expect("valid"), "2001:db8::1/128");
    }

    #[test]
    fn nonsense_and_the_whole_internet_are_refused() {
        assert!(parse_cidr("300.1.1.1").is_err());
        assert!(parse_cidr("1.2.3.4/33").is_err());
        assert!(parse_cidr("example.com").is_err());
        assert!(
            parse_cidr("0.0.0.0/0").expect_err("refused").to_string().contains("whole internet")
        );
        assert!(parse_cidr(&"9".repeat(10_000)).expect_err("refused").to_string().len() < 200);
    }
}
