//! The orchestrator: the command line an administrator runs, and the agent on every droplet.
//!
//! The fleet model (configuration, plan, state) lives in the `fleet` crate; this crate adds
//! the outside world: providers that make droplets, the agent, and the commands.

pub mod agent;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod control;
pub mod engine;
pub mod environment;
pub mod http;
pub mod lb;
pub mod notify;
pub mod output;
pub mod progress;
pub mod provider;
pub mod release;
pub mod secret;
pub mod secrets;
pub mod workspace;
