//! `--update-ip IP`: record the administrator's address for the firewall.

use anyhow::bail;
use serde::Serialize;

use super::Context;
use crate::output;

#[derive(Serialize)]
struct Change {
    previous: Option<String>,
    admin_ip: String,
    dry_run: bool,
    firewall: &'static str,
}

pub async fn run(context: &Context, address: &str) -> anyhow::Result<()> {
    let cidr = parse_cidr(address)?;
    let deploy = context.load_deploy_config()?;
    let _lock = if context.dry_run {
        None
    } else {
        Some(context.lock("--update-ip")?)
    };
    let store = context.store();
    let mut state = store.load()?;
    let previous = state.admin_ip.replace(cidr.clone());
    if let Some(lock) = &_lock {
        state.updated_at = Some(crate::clock::now_rfc3339());
        store.save(lock, &state)?;
    }

    let firewall = match deploy.provider {
        fleet::deploy_config::ProviderKind::Local => {
            "the local cloud has no firewall; the address is recorded for clouds that have one"
        }
    };
    let change = Change {
        previous,
        admin_ip: cidr,
        dry_run: context.dry_run,
        firewall,
    };
    if context.json {
        output::print_json(&change);
        return Ok(());
    }
    let verb = if context.dry_run {
        "Would record"
    } else {
        "Recorded"
    };
    match &change.previous {
        Some(old) if *old == change.admin_ip => println!(
            "{verb} administrator address {} (unchanged).",
            change.admin_ip
        ),
        Some(old) => println!(
            "{verb} administrator address {} (was {old}).",
            change.admin_ip
        ),
        None => println!("{verb} administrator address {}.", change.admin_ip),
    }
    println!("Note: {}.", change.firewall);
    Ok(())
}

/// Accepts an IPv4 or IPv6 address or CIDR block; a bare address becomes a one-host block.
pub fn parse_cidr(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let Ok(ip) = address.parse::<std::net::IpAddr>() else {
        bail!(
            "{text:?} is not an IP address or CIDR block (such as 203.0.113.100 or 203.0.113.0/24)"
        );
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => bail!("{text:?} has an invalid prefix length; it must be 0 to {max}"),
        },
    };
    if prefix == 0 || ip.is_unspecified() {
        bail!("{text:?} would let the whole internet in; give your own address");
    }
    Ok(format!("{ip}/{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_blocks() {
        assert_eq!(
            parse_cidr("203.0.113.100").expect("valid"),
            "203.0.113.100/32"
        );
        assert_eq!(
            parse_cidr("203.0.113.0/24").expect("valid"),
            "203.0.113.0/24"
        );
        assert_eq!(parse_cidr("2001:db8::1").expect("valid"), "2001:db8::1/128");
    }

    #[test]
    fn nonsense_and_the_whole_internet_are_refused() {
        assert!(parse_cidr("300.1.1.1").is_err());
        assert!(parse_cidr("1.2.3.4/33").is_err());
        assert!(parse_cidr("example.com").is_err());
        assert!(
            parse_cidr("0.0.0.0/0")
                .expect_err("refused")
                .to_string()
                .contains("whole internet")
        );
    }
}
