//! Stream, consumer and subject names. Changing one is a breaking change for every publisher and
//! dashboard, so they live here and nowhere else.

use crate::{CommandKind, TenantId};

/// Work-queue stream holding commands until a worker acknowledges them.
pub const COMMANDS_STREAM: &str = "LANDLORD_COMMANDS";
/// Every command subject, for the stream definition.
pub const COMMANDS_WILDCARD: &str = "landlord.commands.>";
/// Limits-retention stream of progress events, replayable by dashboards.
pub const PROGRESS_STREAM: &str = "LANDLORD_PROGRESS";
/// Every progress subject, for the stream definition.
pub const PROGRESS_WILDCARD: &str = "landlord.progress.>";
/// The one durable pull consumer all workers share: a work-queue stream refuses a second consumer
/// with overlapping subjects.
pub const WORKERS_CONSUMER: &str = "landlord-workers";
/// Progress token used when a rejected message named no tenant Landlord could read.
pub const UNKNOWN_TENANT: &str = "unknown";

/// `landlord.commands.<kind>.<tenant_id>`.
pub fn command_subject(kind: CommandKind, tenant: &TenantId) -> String {
    format!("landlord.commands.{}.{tenant}", kind.as_str())
}

/// `landlord.progress.<tenant_id>`, or `landlord.progress.unknown` for a message naming no tenant.
pub fn progress_subject(tenant: Option<&TenantId>) -> String {
    match tenant {
        Some(t) => format!("landlord.progress.{t}"),
        None => format!("landlord.progress.{UNKNOWN_TENANT}"),
    }
}

/// Reads the kind and tenant tokens of a command subject, for messages whose payload does not decode.
pub fn parse_command_subject(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("landlord.commands.")?;
    let (kind, tenant) = rest.split_once('.')?;
    (!tenant.contains('.')).then_some((kind, tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_have_the_documented_shape() {
        let t = TenantId::from_checkout_session("cs_test_1");
        assert_eq!(command_subject(CommandKind::Provision, &t), format!("landlord.commands.provision.{t}"));
        assert_eq!(progress_subject(Some(&t)), format!("landlord.progress.{t}"));
        assert_eq!(progress_subject(None), "landlord.progress.unknown");
        assert_eq!(parse_command_subject("landlord.commands.retry.abc"), Some(("retry", "abc")));
        assert_eq!(parse_command_subject("landlord.commands.retry"), None);
        assert_eq!(parse_command_subject("other.commands.retry.abc"), None);
    }
}
