//! Admin tokens (`LANDLORD_ADMIN_TOKENS`): each has a name (recorded as who asked), a role, and the token
//! itself or only its SHA-256 digest, so the plain token need not sit in the configuration.
//!
//! Entries are comma-separated: `name:role:token`, `name:role:sha256:<64 hex digits>`, or, as before roles
//! existed, a bare `token` (named `admin`, role `admin`). Roles: `admin` may change tenants, `viewer` may
//! only read. Only digests are kept in memory.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read tenants, their steps and the audit log.
    Viewer,
    /// Everything a viewer may, and change tenants.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        }
    }
}

/// One accepted token: its name, role and digest. `Debug` shows no digest.
#[derive(Clone)]
pub struct AdminToken {
    pub name: String,
    pub role: Role,
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({}, {})", self.name, self.role.as_str())
    }
}

/// Parses the setting; every problem names the entry by position, never its token.
pub fn parse(list: Option<&SecretString>) -> Result<Vec<AdminToken>, String> {
    let Some(list) = list else { return Ok(Vec::new()) };
    let mut tokens: Vec<AdminToken> = Vec::new();
    for (i, entry) in list.expose_secret().split(',').map(str::trim).enumerate().filter(|(_, e)| !e.is_empty()) {
        let at = format!("LANDLORD_ADMIN_TOKENS entry {}", i + 1);
        let parts: Vec<&str> = entry.splitn(4, ':').collect();
        let (name, role, digest) = match parts.as_slice() {
            [token] => ("admin", Role::Admin, digest_of(token, &at)?),
            [name, role, token] => (*name, role_of(role, &at)?, digest_of(token, &at)?),
            [name, role, "sha256", hex] => (*name, role_of(role, &at)?, hex_digest(hex, &at)?),
            _ => return Err(format!("{at} is not name:role:token or name:role:sha256:<hex>")),
        };
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(format!("{at}: the name must be 1 to 64 letters, digits, - _ . @"));
        }
        if tokens.iter().any(|t| t.name == name) {
            return Err(format!(
                "{at} repeats the name {name:?}; each token needs its own name (the audit log records it; bare tokens are named admin)"
            ));
        }
        if tokens.iter().any(|t| bool::from(t.digest.ct_eq(&digest))) {
            return Err(format!("{at} repeats a token given before; each token must be different"));
        }
        tokens.push(AdminToken { name: name.to_owned(), role, digest });
    }
    Ok(tokens)
}

fn role_of(role: &str, at: &str) -> Result<Role, String> {
    match role {
        "admin" => Ok(Role::Admin),
        "viewer" => Ok(Role::Viewer),
        other => Err(format!("{at}: role {other:?} is not admin or viewer")),
    }
}

fn digest_of(token: &str, at: &str) -> Result<[u8; 32], String> {
    if token.len() < 16 {
        return Err(format!("{at}: a token must be at least 16 characters"));
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

fn hex_digest(hex: &str, at: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex).map_err(|_| format!("{at}: the sha256 digest is not hex"))?;
    bytes.try_into().map_err(|_| format!("{at}: a sha256 digest is 64 hex digits"))
}

/// The token whose digest matches `given`'s; every token is compared, in constant time.
pub fn find<'a>(tokens: &'a [AdminToken], given: &str) -> Option<&'a AdminToken> {
    let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        if bool::from(t.digest.ct_eq(&digest)) {
            found = Some(t);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Result<Vec<AdminToken>, String> {
        parse(Some(&SecretString::from(s.to_owned())))
    }

    #[test]
    fn entries_give_names_roles_and_digests() {
        let digest = hex::encode(Sha256::digest(b"viewer-token-0123456789"));
        let list =
            tokens(&format!("ops:admin:admin-token-0123456789, dash:viewer:sha256:{digest}, legacy-token-0123456789"))
                .unwrap();
        assert_eq!(list.len(), 3);
        let ops = find(&list, "admin-token-0123456789").unwrap();
        assert_eq!((ops.name.as_str(), ops.role), ("ops", Role::Admin));
        let dash = find(&list, "viewer-token-0123456789").unwrap();
        assert_eq!((dash.name.as_str(), dash.role), ("dash", Role::Viewer));
        assert_eq!(find(&list, "legacy-token-0123456789").unwrap().name, "admin");
        assert!(find(&list, "sha256").is_none());
        assert!(!format!("{list:?}").contains("0123456789"), "Debug shows no token");
    }

    #[test]
    fn bad_entries_are_refused_without_quoting_the_token() {
        for (bad, says) in [
            ("ops:root:secret-token-0123456789", "role \"root\""),
            ("ops:admin:short", "at least 16"),
            ("ops:viewer:sha256:xyz", "not hex"),
            ("ops:viewer:sha256:abcd", "64 hex digits"),
            ("o ps:admin:secret-token-0123456789", "the name"),
            ("a:admin:secret-token-0123456789,b:viewer:secret-token-0123456789", "repeats a token"),
            ("a:admin:secret-token-0123456789,a:viewer:other-token-0123456789", "repeats the name"),
        ] {
            let err = tokens(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains("secret-token"), "{err}");
        }
        assert!(tokens(" , ").unwrap().is_empty());
    }
}
