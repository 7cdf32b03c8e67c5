//! Landlord end to end, against a private nats-server per test and the machine's real MariaDB and
//! PostgreSQL. One test binary for the whole suite keeps link time down.

mod admin_api;
mod chaos;
mod dashboard;
mod duplicates;
mod events;
mod failures;
mod health_tls;
mod hostile;
mod infra;
mod ingress_edges;
mod isolation;
mod leases;
mod lifecycle;
mod mail;
mod metrics;
mod moves;
mod nats_auth;
mod offboard;
mod ownership;
mod placement;
mod plan_change;
mod provision;
mod refused;
mod retention;
mod secrets;
mod settings;
mod stripe_events;
mod traces;
mod watch;
mod webhook_http;
