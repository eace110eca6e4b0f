//! End-to-end tests: the real binary in temporary directories, with real agent processes on

// Tests run outside any async runtime, so blocking sleeps are fine here.
#![allow(clippy::disallowed_methods)]
//! loopback addresses of each test's own local cloud.

mod common;

mod bad_input;
mod cleanup;
mod digitalocean;
mod init;
mod load_balancer;
mod local_cloud;
mod orchestrate;
mod recovery;
mod setup;
mod status;
