//! The planner: a pure function from the desired fleet and what the cloud reports to the
//! actions that make them agree.
//!
//! No network, no clock, no randomness: the same inputs always give the same plan, which is
//! what lets `--dry-run` promise what `--orchestrate` will do, and lets a re-run after a crash
//! adopt what exists instead of creating it twice.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::desired::{DesiredDroplet, DesiredFleet};
use crate::model::{self, DropletStatus, MASTER, ObservedDroplet, Role, ServiceKey, ServiceKind};
use crate::ports::{self, PortBook, PortsExhausted};
use crate::state::{DropletRecord, ServiceRecord, State};
use crate::topology;

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateDroplet {
        name: String,
        role: Role,
        size: String,
        region: String,
    },
    /// The droplet exists but is not running.
    StartDroplet {
        name: String,
        id: String,
    },
    /// Changes a droplet's size; the droplet is down while it happens.
    ResizeDroplet {
        name: String,
        id: String,
        from: String,
        to: String,
    },
    /// Destroys a droplet and creates it anew (`--force`).
    ReplaceDroplet {
        name: String,
        id: String,
        role: Role,
        size: String,
        region: String,
    },
    DestroyDroplet {
        name: String,
        id: String,
        ip: Option<String>,
        reason: DestroyReason,
    },
    PlaceService {
        key: ServiceKey,
        port: Option<u16>,
        droplets: Vec<String>,
    },
    MoveService {
        key: ServiceKey,
        from: ServiceRecord,
        to: ServiceRecord,
    },
    RemoveService {
        key: ServiceKey,
    },
}

/// Why a droplet is to be destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyReason {
    /// No project in the CSV asks for it any more.
    NotInCsv,
    /// A second droplet of the same name, left by an interrupted create.
    Duplicate,
}

impl Action {
    /// The verb shown in the plan table.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::CreateDroplet { .. } => "create",
            Action::StartDroplet { .. } => "start",
            Action::ResizeDroplet { .. } => "resize",
            Action::ReplaceDroplet { .. } => "replace",
            Action::DestroyDroplet { .. } => "destroy",
            Action::PlaceService { .. } => "place",
            Action::MoveService { .. } => "update",
            Action::RemoveService { .. } => "remove",
        }
    }

    /// What the action is done to: a droplet or a service.
    pub fn target(&self) -> String {
        match self {
            Action::CreateDroplet { name, .. }
            | Action::StartDroplet { name, .. }
            | Action::ResizeDroplet { name, .. }
            | Action::ReplaceDroplet { name, .. }
            | Action::DestroyDroplet { name, .. } => name.clone(),
            Action::PlaceService { key, .. }
            | Action::MoveService { key, .. }
            | Action::RemoveService { key } => key.to_string(),
        }
    }

    /// A sentence saying what will happen.
    pub fn detail(&self) -> String {
        match self {
            Action::CreateDroplet { role, size, region, .. } => {
                format!("{role} droplet, {size} in {region}")
            }
            Action::StartDroplet { .. } => "exists but is not running".into(),
            Action::ResizeDroplet { from, to, .. } => {
                format!("{from} → {to} (down while resizing)")
            }
            Action::ReplaceDroplet { size, region, .. } => {
                format!("destroy and create again, {size} in {region}")
            }
            Action::DestroyDroplet { reason: DestroyReason::NotInCsv, id, .. } => {
                format!("no project needs it (id {id})")
            }
            Action::DestroyDroplet { reason: DestroyReason::Duplicate, id, ip, .. } => format!(
                "duplicate of a droplet with the same name: this one is id {id}{}",
                ip.as_ref().map(|ip| format!(" at {ip}")).unwrap_or_default()
            ),
            Action::PlaceService { port, droplets, .. } => placement_text(*port, droplets),
            Action::MoveService { from, to, .. } => format!(
                "{} → {}",
                placement_text(from.port, &from.assigned_droplets),
                placement_text(to.port, &to.assigned_droplets)
            ),
            Action::RemoveService { .. } => "no longer configured; it stops running".into(),
        }
    }

    /// Whether the action loses a droplet or a running service, or takes a droplet down, so
    /// needs confirmation.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::DestroyDroplet { .. }
                | Action::ResizeDroplet { .. }
                | Action::ReplaceDroplet { .. }
                | Action::RemoveService { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.verb(), self.target(), self.detail())
    }
}

fn placement_text(port: Option<u16>, droplets: &[String]) -> String {
    match port {
        Some(port) => format!("port {port} on {}", droplets.join(", ")),
        None => format!("worker on {}", droplets.join(", ")),
    }
}

/// The actions to take, and the service layout that holds once they are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Services by project-environment, as the state will record them.
    pub services: BTreeMap<String, BTreeMap<String, ServiceRecord>>,
    /// The droplets the fleet should have, master first.
    pub droplets: Vec<DesiredDroplet>,
    /// Differences the plan cannot act on by itself, such as a changed agent port.
    pub warnings: Vec<String>,
}

/// The planner cannot lay the fleet out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Ports(#[from] PortsExhausted),
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Whether applying the plan destroys, replaces or takes down any droplet.
    pub fn is_destructive(&self) -> bool {
        self.actions.iter().any(Action::is_destructive)
    }

    /// The state once the plan is applied and the cloud reports `observed`.
    ///
    /// Droplets are recorded as the cloud reports them, so a create that failed shows up as a
    /// validation issue instead of a droplet that does not exist.
    pub fn state_after(
        &self,
        observed: &[ObservedDroplet],
        previous: &State,
        provider: &str,
    ) -> State {
        let kept = keep_one_per_name(observed);
        let names: Vec<&str> = kept
            .keys()
            .copied()
            .filter(|name| self.droplets.iter().any(|d| d.name == *name))
            .collect();
        let monitors = topology::monitors(&names);

        let mut state = State {
            provider: provider.to_string(),
            fleet: previous.fleet.clone(),
            projects: self.services.clone(),
            heartbeat: previous.heartbeat.clone(),
            infrastructure: previous.infrastructure.clone(),
            admin_ip: previous.admin_ip.clone(),
            admin_ip_pinned: previous.admin_ip_pinned,
            additional_ips: previous.additional_ips.clone(),
            ..State::default()
        };
        for (name, droplet) in kept {
            state.add_droplet(
                name,
                DropletRecord {
                    id: droplet.id.clone(),
                    ip: droplet.ip.clone().unwrap_or_default(),
                    role: droplet.role,
                    size: droplet.size.clone(),
                    region: droplet.region.clone(),
                    monitors: monitors.get(name).cloned().unwrap_or_default(),
                    agent_port: droplet.agent_port,
                    status: droplet.status,
                },
            );
        }
        let webs: Vec<String> =
            state.web_droplets().iter().map(|(name, _)| name.to_string()).collect();
        let primary = state.master().map(|_| MASTER.to_string()).or_else(|| webs.first().cloned());
        let backups = webs.into_iter().filter(|w| Some(w) != primary.as_ref()).collect();
        state.heartbeat.primary_sender = primary;
        state.heartbeat.backup_senders = backups;
        state
    }
}

/// Plans the changes that turn `observed` into `desired`.
///
/// `previous` supplies the ports services already have, so adding a project never moves an
/// existing service. `force` replaces every droplet that exists.
pub fn plan(
    desired: &DesiredFleet,
    observed: &[ObservedDroplet],
    previous: &State,
    force: bool,
) -> Result<Plan, PlanError> {
    let mut actions = droplet_actions(desired, observed, force);
    let services = layout_services(desired, previous)?;
    actions.extend(service_actions(&services, previous));
    let warnings = if force { Vec::new() } else { drift_warnings(desired, observed) };
    Ok(Plan { actions, services, droplets: desired.droplets.clone(), warnings })
}

/// Settings a running droplet cannot change in place: only `--force` recreates it with them.
fn drift_warnings(desired: &DesiredFleet, observed: &[ObservedDroplet]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, droplet) in keep_one_per_name(observed) {
        let Some(want) = desired.droplet(name) else { continue };
        if droplet.agent_port != desired.agent_port {
            warnings.push(format!(
                "{name}'s agent listens on port {} but agent_port is {}; --orchestrate --force \
                 recreates the droplets with it",
                droplet.agent_port, desired.agent_port
            ));
        }
        if droplet.region != want.region {
            warnings.push(format!(
                "{name} is in region {} but region is {}; --orchestrate --force recreates the \
                 droplets there",
                droplet.region, want.region
            ));
        }
    }
    warnings
}

fn droplet_actions(
    desired: &DesiredFleet,
    observed: &[ObservedDroplet],
    force: bool,
) -> Vec<Action> {
    let kept = keep_one_per_name(observed);
    let mut destroys = Vec::new();
    let mut changes = Vec::new();
    let mut creates = Vec::new();

    for droplet in observed {
        let is_kept = kept.get(droplet.name.as_str()).is_some_and(|k| k.id == droplet.id);
        if !is_kept {
            destroys.push(Action::DestroyDroplet {
                name: droplet.name.clone(),
                id: droplet.id.clone(),
                ip: droplet.ip.clone(),
                reason: DestroyReason::Duplicate,
            });
        } else if desired.droplet(&droplet.name).is_none() {
            destroys.push(Action::DestroyDroplet {
                name: droplet.name.clone(),
                id: droplet.id.clone(),
                ip: droplet.ip.clone(),
                reason: DestroyReason::NotInCsv,
            });
        }
    }

    for want in &desired.droplets {
        let Some(have) = kept.get(want.name.as_str()) else {
            creates.push(Action::CreateDroplet {
                name: want.name.clone(),
                role: want.role,
                size: want.size.clone(),
                region: want.region.clone(),
            });
            continue;
        };
        if force {
            changes.push(Action::ReplaceDroplet {
                name: want.name.clone(),
                id: have.id.clone(),
                role: want.role,
                size: want.size.clone(),
                region: want.region.clone(),
            });
            continue;
        }
        if have.size != want.size {
            changes.push(Action::ResizeDroplet {
                name: want.name.clone(),
                id: have.id.clone(),
                from: have.size.clone(),
                to: want.size.clone(),
            });
        }
        if have.status == DropletStatus::Off {
            creates.push(Action::StartDroplet { name: want.name.clone(), id: have.id.clone() });
        }
    }

    destroys
        .sort_by(|a, b| model::droplet_order(&a.target()).cmp(&model::droplet_order(&b.target())));
    destroys.into_iter().chain(changes).chain(creates).collect()
}

/// Of droplets sharing a name, the one to keep: running before stopped, then the oldest id.
fn keep_one_per_name(observed: &[ObservedDroplet]) -> BTreeMap<&str, &ObservedDroplet> {
    let mut kept: BTreeMap<&str, &ObservedDroplet> = BTreeMap::new();
    for droplet in observed {
        let rank =
            |d: &ObservedDroplet| (d.status != DropletStatus::Active, d.id.len(), d.id.clone());
        match kept.get(droplet.name.as_str()) {
            Some(current) if rank(current) <= rank(droplet) => {}
            _ => {
                kept.insert(droplet.name.as_str(), droplet);
            }
        }
    }
    kept
}

fn layout_services(
    desired: &DesiredFleet,
    previous: &State,
) -> Result<BTreeMap<String, BTreeMap<String, ServiceRecord>>, PlanError> {
    // Infrastructure ports are relayed on every web droplet, so no service may take one.
    let mut reserved = vec![desired.agent_port, desired.load_balancer_port];
    reserved.extend(previous.infrastructure.values());
    let mut book = PortBook::new(&reserved);
    let mut ports_given: HashMap<&ServiceKey, u16> = HashMap::new();

    // Ports a service already has come first, so a new project never displaces one. A port is
    // kept only where probing from the service's own candidate could have led to it; between
    // two services claiming one port the nearer to its candidate wins. A hand edit to
    // anything else is overwritten.
    let mut claims: Vec<(u16, &ServiceKey, u16, &[String])> = Vec::new();
    for service in desired.services.iter().filter(|s| s.kind == ServiceKind::Web) {
        let prior = previous
            .projects
            .get(&service.key.project_env())
            .and_then(|services| services.get(&service.key.service))
            .and_then(|record| record.port);
        let candidate = ports::hash_port(
            &service.key.project,
            &service.key.environment,
            service.base_port,
            ports::PORT_RANGE,
        );
        if let Some(port) = prior
            && port >= candidate
            && port - candidate < ports::PORT_RANGE
        {
            claims.push((port - candidate, &service.key, port, &service.droplets));
        }
    }
    claims.sort();
    for (_, key, port, droplets) in claims {
        if book.is_free(port, droplets) {
            book.take(port, droplets);
            ports_given.insert(key, port);
        }
    }

    let mut services: BTreeMap<String, BTreeMap<String, ServiceRecord>> = BTreeMap::new();
    for service in &desired.services {
        let port = match service.kind {
            ServiceKind::Worker => None,
            ServiceKind::Web => Some(match ports_given.get(&service.key) {
                Some(port) => *port,
                None => {
                    let key = &service.key;
                    let candidate = ports::hash_port(
                        &key.project,
                        &key.environment,
                        service.base_port,
                        ports::PORT_RANGE,
                    );
                    book.allocate(&key.to_string(), candidate, &service.droplets)?
                }
            }),
        };
        services.entry(service.key.project_env()).or_default().insert(
            service.key.service.clone(),
            ServiceRecord { port, assigned_droplets: service.droplets.clone(), kind: service.kind },
        );
    }
    Ok(services)
}

fn service_actions(
    services: &BTreeMap<String, BTreeMap<String, ServiceRecord>>,
    previous: &State,
) -> Vec<Action> {
    let key_of = |project_env: &str, service: &str| {
        let (project, environment) =
            model::split_project_env(project_env).unwrap_or((project_env, ""));
        ServiceKey {
            project: project.into(),
            environment: environment.into(),
            service: service.into(),
        }
    };
    let mut actions = Vec::new();
    for (project_env, records) in services {
        for (service, record) in records {
            let prior = previous.projects.get(project_env).and_then(|p| p.get(service));
            match prior {
                None => actions.push(Action::PlaceService {
                    key: key_of(project_env, service),
                    port: record.port,
                    droplets: record.assigned_droplets.clone(),
                }),
                Some(prior) if prior != record => actions.push(Action::MoveService {
                    key: key_of(project_env, service),
                    from: prior.clone(),
                    to: record.clone(),
                }),
                Some(_) => {}
            }
        }
    }
    for (project_env, records) in &previous.projects {
        for service in records.keys() {
            if services.get(project_env).is_none_or(|r| !r.contains_key(service)) {
                actions.push(Action::RemoveService { key: key_of(project_env, service) });
            }
        }
    }
    actions
}

#[cfg(test)]
mod tests;
