//! Landlord's wire contract: the commands workers consume, the progress events dashboards read, and the
//! subject names both travel on. Types only, no network I/O (the plan catalogue is read from a file), so every crate (and every outside tool) agrees on
//! one definition. Identifiers are newtypes that can only hold valid values: a command that decodes is
//! already safe to act on.

mod command;
mod event;
mod ids;
pub mod plans;
mod schema;
pub mod subjects;
mod subscription;

pub use command::{
    Action, Command, CommandKind, DecodeError, OffboardRequest, PlanChange, ProvisionSpec, Purchase, RefusedPurchase,
};
pub use event::{EventError, EventKind, ProgressEvent, TenantStatus};
pub use ids::{
    CommandId, ContactEmail, IdError, PackageId, StoreName, StripeId, SubscriptionTypeId, TenantId, TenantSlug,
};
pub use plans::{DbEngine, Placement, Plan, Plans, PlansError};
pub use schema::{command_schema, progress_schema};
pub use subscription::{Desired, SubscriptionEvent, SubscriptionEventType, SubscriptionSnapshot, SubscriptionStatus};

/// The version every message carries in its `v` field. A reader refuses versions it does not know
/// instead of guessing at their meaning.
pub const PROTOCOL_VERSION: u8 = 1;
