//! What Landlord needs from Stripe: signature verification and the few fields of a checkout it acts on.
//! Fields are read with serde rather than a typed Stripe SDK so that a valid, paid checkout is never
//! refused because its shape differs from a pinned API version.

mod checkout;
pub mod signature;
mod subscription;

pub use checkout::{EventDecision, WebhookError, decide};
