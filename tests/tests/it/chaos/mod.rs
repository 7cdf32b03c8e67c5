//! The chaos suite: Landlord's guarantees under crashes, restarts, outages and duplicates, with real
//! processes killed for real. Each scenario prints its figures.

mod bulk;
mod cluster;
mod crash;
mod db_outage;
pub mod harness;
mod moving;
mod nats_restart;
mod offboard;
mod operator;
mod shutdown;
mod suspend;
mod timers;
