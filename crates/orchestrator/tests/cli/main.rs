//! End-to-end tests: the real binary in temporary directories, with real agent processes on
//! loopback addresses of each test's own local cloud.

// Tests run outside any async runtime, so blocking sleeps are fine here.
#![allow(clippy::disallowed_methods)]

mod common;

mod bad_input;
mod cleanup;
mod containers;
mod deploy;
mod digitalocean;
mod infrastructure;
mod init;
mod load_balancer;
mod local_cloud;
mod notifications;
mod orchestrate;
mod recovery;
mod setup;
mod status;
