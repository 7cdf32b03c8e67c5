//! Names of a tenant's database and login, derived from its slug. They are types so that only names
//! made here — `tenant_` and the slug with hyphens as underscores, `[a-z][a-z0-9_]*`, at most 63 bytes
//! (PostgreSQL's limit; MariaDB allows 64) — can be quoted into DDL.

use std::fmt;

use landlord_protocol::TenantSlug;

/// A tenant database name that is safe to quote into `CREATE DATABASE` on either engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatabaseName(String);

/// A tenant login (MySQL user, PostgreSQL role): same alphabet and limits as [`DatabaseName`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginName(String);

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a valid tenant database identifier")]
pub struct BadName(String);

fn valid(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

macro_rules! ident {
    ($t:ident) => {
        impl $t {
            /// The name for a tenant's slug.
            pub fn for_slug(slug: &TenantSlug) -> Self {
                Self::parse(&format!("tenant_{}", slug.as_str().replace('-', "_")))
                    .expect("a valid slug makes a valid name")
            }
            /// Accepts a stored name only if it has the safe shape.
            pub fn parse(s: &str) -> Result<Self, BadName> {
                if valid(s) { Ok(Self(s.to_owned())) } else { Err(BadName(s.to_owned())) }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// `` `name` `` for MySQL; safe because the alphabet has no backtick.
            pub fn mysql(&self) -> String {
                format!("`{}`", self.0)
            }
            /// `` `name` `` with `_` escaped as `\_`, for MySQL's database-level `GRANT … ON db.*`, where `_`
            /// and `%` are LIKE wildcards: unescaped, a grant on `tenant_ab_c` also opens `tenant_abxc`.
            /// The alphabet has no `%`, so `_` is the only wildcard to escape.
            pub fn mysql_grant_pattern(&self) -> String {
                format!("`{}`", self.0.replace('_', "\\_"))
            }
            /// `"name"` for PostgreSQL; safe because the alphabet has no double quote.
            pub fn pg(&self) -> String {
                format!("\"{}\"", self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
ident!(DatabaseName);
ident!(LoginName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_slug() {
        let slug = TenantSlug::parse("acme-bakery-2").unwrap();
        assert_eq!(DatabaseName::for_slug(&slug).as_str(), "tenant_acme_bakery_2");
        assert_eq!(LoginName::for_slug(&slug).mysql(), "`tenant_acme_bakery_2`");
        assert_eq!(DatabaseName::for_slug(&slug).mysql_grant_pattern(), r"`tenant\_acme\_bakery\_2`");
        let longest = TenantSlug::parse(&format!("a{}", "b".repeat(TenantSlug::MAX_LEN - 1))).unwrap();
        assert!(DatabaseName::for_slug(&longest).as_str().len() <= 63);
        for bad in ["", "Tenant", "a-b", "a`b", "a\"b", "1abc", &"a".repeat(64)] {
            assert!(DatabaseName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
