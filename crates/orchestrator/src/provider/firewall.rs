//! Who may reach the fleet, independent of any cloud's firewall syntax.
//!
//! SSH only from the administrator's addresses; HTTP and HTTPS open on master, where the load
//! balancer listens; the agent and service ports only between the fleet's own droplets, plus
//! the agent port from the administrator, whose command line talks to agents.

use std::collections::BTreeSet;

use fleet::State;

/// The rules for one fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPolicy {
    /// CIDR blocks allowed SSH and the agent port.
    pub admin_sources: Vec<String>,
    /// Ports open to everyone on master.
    pub public_ports_on_master: Vec<u16>,
    /// Ports open between fleet droplets only.
    pub fleet_ports: Vec<u16>,
    pub agent_port: u16,
}

/// The policy for `state`: its administrator addresses, service ports and agent port.
pub fn policy(state: &State, agent_port: u16, load_balancer_port: u16) -> FirewallPolicy {
    let admin_sources: Vec<String> =
        state.admin_ip.iter().chain(&state.additional_ips).cloned().collect();
    let mut fleet_ports: BTreeSet<u16> =
        state.projects.values().flat_map(|s| s.values().filter_map(|r| r.port)).collect();
    fleet_ports.insert(agent_port);
    let mut public: BTreeSet<u16> = BTreeSet::from([80, 443]);
    public.insert(load_balancer_port);
    FirewallPolicy {
        admin_sources,
        public_ports_on_master: public.into_iter().collect(),
        fleet_ports: fleet_ports.into_iter().collect(),
        agent_port,
    }
}
