//! The names of the steps, in one place: the runner, the settings (`LANDLORD_COMPENSATE`,
//! `LANDLORD_STEP_RETRY__<step>__*`), failpoints, the control plane and progress events all use these.
//! The strings are the wire format (`"step": "create_database"`) and are stored per tenant: never change a
//! released one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `Debug` prints the name operators type (`create_database`), as `Display` does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    CreateDatabase,
    ApplySchema,
    ConfigureDns,
    DeployStack,
    HealthCheck,
    Activate,
    LockLogin,
    UnlockLogin,
    ArchiveDatabase,
    DeleteStack,
    RemoveDns,
    DropDatabase,
    ForgetCredentials,
    UpgradeSchema,
    RecordPlan,
    UpdateStack,
    ParkDns,
    RestoreDns,
    PlaceDatabase,
    ReserveServer,
    CopyDatabase,
    SwitchServer,
    DropOldCopy,
    Notify,
}

impl StepName {
    pub const ALL: [StepName; 24] = [
        Self::CreateDatabase,
        Self::ApplySchema,
        Self::ConfigureDns,
        Self::DeployStack,
        Self::HealthCheck,
        Self::Activate,
        Self::LockLogin,
        Self::UnlockLogin,
        Self::ArchiveDatabase,
        Self::DeleteStack,
        Self::RemoveDns,
        Self::DropDatabase,
        Self::ForgetCredentials,
        Self::UpgradeSchema,
        Self::RecordPlan,
        Self::UpdateStack,
        Self::ParkDns,
        Self::RestoreDns,
        Self::PlaceDatabase,
        Self::ReserveServer,
        Self::CopyDatabase,
        Self::SwitchServer,
        Self::DropOldCopy,
        Self::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateDatabase => "create_database",
            Self::ApplySchema => "apply_schema",
            Self::ConfigureDns => "configure_dns",
            Self::DeployStack => "deploy_stack",
            Self::HealthCheck => "health_check",
            Self::Activate => "activate",
            Self::LockLogin => "lock_login",
            Self::UnlockLogin => "unlock_login",
            Self::ArchiveDatabase => "archive_database",
            Self::DeleteStack => "delete_stack",
            Self::RemoveDns => "remove_dns",
            Self::DropDatabase => "drop_database",
            Self::ForgetCredentials => "forget_credentials",
            Self::UpgradeSchema => "upgrade_schema",
            Self::RecordPlan => "record_plan",
            Self::UpdateStack => "update_stack",
            Self::ParkDns => "park_dns",
            Self::RestoreDns => "restore_dns",
            Self::PlaceDatabase => "place_database",
            Self::ReserveServer => "reserve_server",
            Self::CopyDatabase => "copy_database",
            Self::SwitchServer => "switch_server",
            Self::DropOldCopy => "drop_old_copy",
            Self::Notify => "notify",
        }
    }

    /// The step named `s`, or an error that lists the names there are.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|n| n.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|n| n.as_str()).collect();
            format!("{s:?} is not a step; the steps are {}", known.join(", "))
        })
    }
}

impl fmt::Debug for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::StepName;

    #[test]
    fn names_parse_back_and_match_their_serde_form() {
        for name in StepName::ALL {
            assert_eq!(StepName::parse(name.as_str()), Ok(name));
            assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
        }
        assert!(StepName::parse("create_databse").unwrap_err().contains("create_database"));
    }
}
