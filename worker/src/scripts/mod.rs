//! Plan scripts: where they come from, and how they are cut into statements.

mod source;
pub mod split;
pub mod upload;

pub use source::{PlanScript, S3Scripts, ScriptError, ScriptSource};
pub use split::{SplitError, Statement, split};

/// The SQL dialect of a tenant database server, which decides both the script folder and the
/// splitting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    MySql,
    Postgres,
}

impl Dialect {
    /// Folder under the scripts root, and the name stored on the tenant.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MySql => "mysql",
            Self::Postgres => "postgres",
        }
    }
}

#[cfg(test)]
mod split_tests;
