//! The worker's one error type, at the bottom of its modules: steps, providers (tenant databases, AWS,
//! scripts) and the runner import it; it imports none of them. A step error carries a stable code (a
//! closed set: dashboards and alerts match on these strings), whether trying again can help, and a
//! message a person can act on, never a secret.

use std::fmt;

use landlord_protocol::EventError;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Connection refused, timeouts, throttling, lock waits: back off and try again.
    Transient,
    /// Bad script, conflicting resource, invalid input: stop, mark failed, wait for a person.
    Permanent,
    /// Nothing is wrong, but only a person can go on (a server must be handed over, a pool is full): the
    /// run pauses in `awaiting_operator` with the reason and resumes where it stopped once they act.
    Operator,
}

/// Every code a step error may carry. The strings are part of the public contract (progress events, the
/// control plane): never change a released one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ControlPlane,
    ControlPlaneSecret,
    DatabaseUnavailable,
    DatabaseError,
    DatabaseConflict,
    DatabaseLoginRefused,
    TenantLoginRefused,
    TenantDbUrl,
    SchemaFailed,
    SchemaConflict,
    ScriptMissing,
    ScriptInvalid,
    ScriptUnreadable,
    ResourceConflict,
    ResourceNotOurs,
    TenantMissing,
    NoTenant,
    NotReady,
    DnsZone,
    DnsChange,
    DnsList,
    DnsPending,
    DnsTimeout,
    StackTemplate,
    StackDescribe,
    StackUpdate,
    StackCreate,
    StackEvents,
    StackDelete,
    StackGone,
    StackInProgress,
    StackFailed,
    Unhealthy,
    Cancelled,
    ArchiveTool,
    ArchiveFailed,
    ArchiveStore,
    NoRoom,
    DedicatedServerNeeded,
    ServerTemplate,
    MoveFailed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 41] = [
        Self::ControlPlane,
        Self::ControlPlaneSecret,
        Self::DatabaseUnavailable,
        Self::DatabaseError,
        Self::DatabaseConflict,
        Self::DatabaseLoginRefused,
        Self::TenantLoginRefused,
        Self::TenantDbUrl,
        Self::SchemaFailed,
        Self::SchemaConflict,
        Self::ScriptMissing,
        Self::ScriptInvalid,
        Self::ScriptUnreadable,
        Self::ResourceConflict,
        Self::ResourceNotOurs,
        Self::TenantMissing,
        Self::NoTenant,
        Self::NotReady,
        Self::DnsZone,
        Self::DnsChange,
        Self::DnsList,
        Self::DnsPending,
        Self::DnsTimeout,
        Self::StackTemplate,
        Self::StackDescribe,
        Self::StackUpdate,
        Self::StackCreate,
        Self::StackEvents,
        Self::StackDelete,
        Self::StackGone,
        Self::StackInProgress,
        Self::StackFailed,
        Self::Unhealthy,
        Self::Cancelled,
        Self::ArchiveTool,
        Self::ArchiveFailed,
        Self::ArchiveStore,
        Self::NoRoom,
        Self::DedicatedServerNeeded,
        Self::ServerTemplate,
        Self::MoveFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlPlane => "control_plane",
            Self::ControlPlaneSecret => "control_plane_secret",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::DatabaseError => "database_error",
            Self::DatabaseConflict => "database_conflict",
            Self::DatabaseLoginRefused => "database_login_refused",
            Self::TenantLoginRefused => "tenant_login_refused",
            Self::TenantDbUrl => "tenant_db_url",
            Self::SchemaFailed => "schema_failed",
            Self::SchemaConflict => "schema_conflict",
            Self::ScriptMissing => "script_missing",
            Self::ScriptInvalid => "script_invalid",
            Self::ScriptUnreadable => "script_unreadable",
            Self::ResourceConflict => "resource_conflict",
            Self::ResourceNotOurs => "resource_not_ours",
            Self::TenantMissing => "tenant_missing",
            Self::NoTenant => "no_tenant",
            Self::NotReady => "not_ready",
            Self::DnsZone => "dns_zone",
            Self::DnsChange => "dns_change",
            Self::DnsList => "dns_list",
            Self::DnsPending => "dns_pending",
            Self::DnsTimeout => "dns_timeout",
            Self::StackTemplate => "stack_template",
            Self::StackDescribe => "stack_describe",
            Self::StackUpdate => "stack_update",
            Self::StackCreate => "stack_create",
            Self::StackEvents => "stack_events",
            Self::StackDelete => "stack_delete",
            Self::StackGone => "stack_gone",
            Self::StackInProgress => "stack_in_progress",
            Self::StackFailed => "stack_failed",
            Self::Unhealthy => "unhealthy",
            Self::Cancelled => "cancelled",
            Self::ArchiveTool => "archive_tool",
            Self::ArchiveFailed => "archive_failed",
            Self::ArchiveStore => "archive_store",
            Self::NoRoom => "no_room",
            Self::DedicatedServerNeeded => "dedicated_server_needed",
            Self::ServerTemplate => "server_template",
            Self::MoveFailed => "move_failed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The original error under a step error, shared so the step error stays cheap to clone.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A step failure with a stable code and a message a person can act on. Never holds a secret: the cause
/// is kept (`source`) only where its text cannot carry one, and [`StepError::redact`] drops it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub retry: Retry,
    pub code: ErrorCode,
    pub message: String,
    #[source]
    pub cause: Option<Cause>,
}

/// Two step errors are the same failure when code, retry and message agree, whatever their causes.
impl PartialEq for StepError {
    fn eq(&self, other: &Self) -> bool {
        (self.retry, self.code, &self.message) == (other.retry, other.code, &other.message)
    }
}

impl Eq for StepError {}

impl StepError {
    pub fn transient(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { retry: Retry::Transient, code, message: message.into(), cause: None }
    }
    pub fn permanent(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { retry: Retry::Permanent, code, message: message.into(), cause: None }
    }
    /// The same error, keeping `cause` as its source. Only for causes whose text holds no secret.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(std::sync::Arc::new(cause));
        self
    }
    /// Waits for a person: see [`Retry::Operator`].
    pub fn awaiting_operator(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { retry: Retry::Operator, code, message: message.into(), cause: None }
    }
    pub fn is_transient(&self) -> bool {
        self.retry == Retry::Transient
    }
    pub fn waits_for_operator(&self) -> bool {
        self.retry == Retry::Operator
    }
    /// Removes `secret` from the message, for errors of statements that carried one, and drops the cause,
    /// whose text may hold it too.
    pub fn redact(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.message = self.message.replace(secret, "[redacted]");
        }
        self.cause = None;
    }
    pub fn to_event(&self) -> EventError {
        EventError { code: self.code.as_str().into(), message: self.message.clone(), retryable: self.is_transient() }
    }
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, StepError};

    #[test]
    fn a_cause_is_kept_as_the_source_and_dropped_by_redact() {
        use std::error::Error;
        let io = std::io::Error::other("connection reset");
        let mut e = StepError::transient(ErrorCode::DatabaseUnavailable, "tenant database server").caused_by(io);
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("connection reset"));
        e.redact("pw");
        assert!(e.source().is_none());
    }

    #[test]
    fn codes_are_distinct_snake_case_strings() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
