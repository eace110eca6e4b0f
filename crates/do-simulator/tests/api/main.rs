//! End-to-end tests of the simulator over real HTTP, with a plain client.

mod common;

mod actions;
mod admin;
mod auth_and_limits;
mod droplets;
mod faults;
mod firewalls;
mod keys_and_tags;
mod lifecycle;
