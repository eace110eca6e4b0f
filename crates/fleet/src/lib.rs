//! The fleet model of the orchestrator.
//!
//! Everything here is about what the fleet should be and what it is, never about how to
//! reach a cloud: reading `projects.csv` and `deployment_config.json`, deriving the desired
//! fleet, planning the actions that make the cloud agree, and keeping `infrastructure.json`.
//! Apart from the state store, nothing here touches the network, the clock or the disk.

pub mod consensus;
pub mod deploy_config;
pub mod desired;
pub mod infrastructure;
mod json;
pub mod model;
pub mod names;
pub mod notify_config;
pub mod plan;
pub mod ports;
pub mod projects;
pub mod release;
pub mod sizes;
pub mod state;
pub mod store;
pub mod topology;

pub use deploy_config::DeploymentConfig;
pub use desired::DesiredFleet;
pub use model::{DropletStatus, ObservedDroplet, Role, ServiceKey, ServiceKind};
pub use plan::{Action, Plan, plan};
pub use state::State;
pub use store::StateStore;
