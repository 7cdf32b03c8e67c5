//! Identifiers that can only hold valid values ("parse, don't validate"). Each one is checked once, at the
//! edge where text enters Landlord; from then on its type is the proof, so a hostile slug can never reach
//! a hostname, a database name or a SQL statement.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a value was refused. The message is meant for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} must be {min} to {max} characters long, got {got}")]
    Length { field: &'static str, min: usize, max: usize, got: usize },
    #[error("{field} may only contain {allowed}; found {found:?}")]
    Character { field: &'static str, allowed: &'static str, found: char },
    #[error("{field} must {rule}")]
    Shape { field: &'static str, rule: &'static str },
    #[error("{field} {value:?} is reserved")]
    Reserved { field: &'static str, value: String },
}

/// A tenant, named by a UUID. Tenants created from a purchase get a UUIDv5 of the checkout session, so
/// every delivery of the same purchase names the same tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TenantId(Uuid);

/// Namespace for tenant ids derived from Stripe checkout sessions. Never change it: doing so would give
/// a retried purchase a second tenant.
const CHECKOUT_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_6e64_6c6f_7264_8000_0000_0000_0001);

impl TenantId {
    /// The tenant of a Stripe checkout session; the same session always gives the same id.
    pub fn from_checkout_session(session_id: &str) -> Self {
        Self(Uuid::new_v5(&CHECKOUT_NAMESPACE, format!("stripe:checkout:{session_id}").as_bytes()))
    }
    /// The key of a Stripe subscription's commands (`stripe_subscription`), in the subject's tenant slot:
    /// the worker finds the tenant the subscription pays for, which the ingress cannot know.
    pub fn for_subscription(subscription_id: &str) -> Self {
        Self(Uuid::new_v5(&CHECKOUT_NAMESPACE, format!("stripe:subscription:{subscription_id}").as_bytes()))
    }
    /// The tenant an operator's `POST /v1/tenants` with this `Idempotency-Key` creates: a repeated request
    /// names the same tenant.
    pub fn from_admin_key(key: &str) -> Self {
        Self(Uuid::new_v5(&CHECKOUT_NAMESPACE, format!("admin:tenant:{key}").as_bytes()))
    }
    /// A fresh id, for tenants an operator creates.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
    /// Parses the canonical hyphenated form.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        Uuid::try_parse(s).map(Self).map_err(|_| IdError::Shape { field: "tenant id", rule: "be a UUID" })
    }
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// The tenant's subdomain: 3–40 of `a-z 0-9 -`, starting with a letter, not ending with a hyphen, no
/// `--` (reserved for punycode), and none of the reserved names. Safe in a DNS label and, with hyphens
/// mapped to underscores, in a database identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);
string_newtype!(TenantSlug);

/// Names a tenant may not take: they belong to the product itself or invite phishing.
pub const RESERVED_SLUGS: &[&str] = &[
    // Landlord's and the product's own names.
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "cdn",
    "dashboard",
    "docs",
    "help",
    "landlord",
    "login",
    "root",
    "static",
    "status",
    "support",
    "system",
    // Environments and machines an operator keeps beside tenants.
    "dev",
    "development",
    "internal",
    "intranet",
    "localhost",
    "prod",
    "production",
    "qa",
    "sandbox",
    "stage",
    "staging",
    "test",
    "uat",
    // Mail, directory and remote-access service names that clients look up by convention.
    "autoconfig",
    "autodiscover",
    "email",
    "ftp",
    "imap",
    "mail",
    "mta-sts",
    "mx",
    "pop",
    "pop3",
    "smtp",
    "webmail",
    "vpn",
    "remote",
    "ns",
    "ns1",
    "ns2",
    "dns",
    "www",
    "wpad",
    "sso",
    "id",
    "oauth",
    "secure",
    "portal",
];

impl TenantSlug {
    pub const MAX_LEN: usize = 40;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        const FIELD: &str = "subdomain";
        let len = s.chars().count();
        if !(3..=Self::MAX_LEN).contains(&len) {
            return Err(IdError::Length { field: FIELD, min: 3, max: Self::MAX_LEN, got: len });
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return Err(IdError::Character {
                field: FIELD,
                allowed: "lowercase letters a-z, digits and hyphens",
                found: c,
            });
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(IdError::Shape { field: FIELD, rule: "start with a letter" });
        }
        if s.ends_with('-') || s.contains("--") {
            return Err(IdError::Shape { field: FIELD, rule: "not end with a hyphen or contain two hyphens in a row" });
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(IdError::Reserved { field: FIELD, value: s.to_owned() });
        }
        Ok(Self(s.to_owned()))
    }

    /// A subdomain made from a store's name, for a purchase that named none: transliterated to ASCII
    /// ("Café Müller" → `cafe-muller`), lowercased, every run of other characters one hyphen, starting with a
    /// letter (`shop-` is put before a digit), short enough to take a collision suffix
    /// ([`TenantSlug::with_suffix`]), and never a reserved name (`-shop` is added to one).
    pub fn derive(store_name: &str) -> Self {
        let ascii = deunicode::deunicode(store_name).to_ascii_lowercase();
        let mut slug = String::new();
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
            slug = format!("shop-{slug}");
        }
        slug.truncate(Self::MAX_LEN - Self::SUFFIX_ROOM);
        let mut slug = slug.trim_end_matches('-').to_owned();
        if slug.len() < 3 || RESERVED_SLUGS.contains(&slug.as_str()) {
            slug.push_str("-shop");
        }
        Self::parse(&slug).expect("a derived subdomain follows the rules it was made to")
    }

    /// Room kept at the end of a derived subdomain for `-` and a suffix of up to 5 characters.
    const SUFFIX_ROOM: usize = 6;

    /// This subdomain with `-<suffix>` (letters and digits) added, shortened first so it stays within the
    /// limit: what a derived subdomain becomes when another tenant holds it.
    pub fn with_suffix(&self, suffix: &str) -> Result<Self, IdError> {
        let room = Self::MAX_LEN.saturating_sub(suffix.len() + 1);
        let base: String = self.0.chars().take(room).collect();
        Self::parse(&format!("{}-{suffix}", base.trim_end_matches('-')))
    }

    /// A subdomain Landlord stored earlier: the same shape rules, but a name reserved since the tenant was
    /// made (the list grows) stays the tenant's, so its retries, DNS and offboarding keep working.
    pub fn parse_stored(s: &str) -> Result<Self, IdError> {
        match Self::parse(s) {
            Err(IdError::Reserved { .. }) => Ok(Self(s.to_owned())),
            other => other,
        }
    }
}

/// The store's display name: 1–100 printable characters, trimmed. Shown to people, never used in SQL or
/// DNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct StoreName(String);
string_newtype!(StoreName);

impl StoreName {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let len = s.chars().count();
        if !(1..=100).contains(&len) {
            return Err(IdError::Length { field: "store name", min: 1, max: 100, got: len });
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(IdError::Character { field: "store name", allowed: "printable characters", found: c });
        }
        Ok(Self(s.to_owned()))
    }
}

/// Where the welcome goes: one `@`, a non-empty local part, a dotted domain, no spaces, at most 254
/// characters. Deliverability is the mail server's business; this only refuses what cannot be an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ContactEmail(String);
string_newtype!(ContactEmail);

impl ContactEmail {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const FIELD: &str = "contact email";
        let len = s.chars().count();
        if !(3..=254).contains(&len) {
            return Err(IdError::Length { field: FIELD, min: 3, max: 254, got: len });
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')) {
            return Err(IdError::Character {
                field: FIELD,
                allowed: "an address without spaces or separators",
                found: c,
            });
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(IdError::Shape { field: FIELD, rule: "look like name@example.com" }),
        }
    }
}

/// Idempotency key of a command: `stripe:<event id>`, `admin:<request id>`, or `landlord:<key>` for the
/// commands Landlord derives itself (a reconcile after a Stripe event, a due timer), used as the JetStream
/// `Nats-Msg-Id` so a repeated delivery is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct CommandId(String);
string_newtype!(CommandId);

impl CommandId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const FIELD: &str = "command id";
        const RULE: &str = "start with stripe:, admin: or landlord:";
        let Some((source, key)) = s.split_once(':') else {
            return Err(IdError::Shape { field: FIELD, rule: RULE });
        };
        if !matches!(source, "stripe" | "admin" | "landlord") {
            return Err(IdError::Shape { field: FIELD, rule: RULE });
        }
        if !(1..=120).contains(&key.len()) {
            return Err(IdError::Length { field: FIELD, min: 1, max: 120, got: key.len() });
        }
        if let Some(c) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            return Err(IdError::Character { field: FIELD, allowed: "letters, digits, _ - .", found: c });
        }
        Ok(Self(s.to_owned()))
    }
    /// The id of the command a Stripe event becomes.
    pub fn stripe(event_id: &str) -> Result<Self, IdError> {
        Self::parse(&format!("stripe:{event_id}"))
    }
    /// The id of a command Landlord derives from something that happened (`reconcile-<event id>`): the same
    /// cause always gives the same id, so publishing it twice stores it once.
    pub fn derived(key: &str) -> Result<Self, IdError> {
        Self::parse(&format!("landlord:{key}"))
    }
}

/// A Stripe object id (`cs_test_…`, `cus_…`): 1–255 ASCII letters, digits, `_`, `-` and `.` (Stripe's own
/// use only the first three; the rest are accepted so a paid purchase is never lost over an id's shape).
/// Stored beside a purchase so an operator can find it in Stripe's dashboard; never used in SQL or DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct StripeId(String);
string_newtype!(StripeId);

impl StripeId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        const FIELD: &str = "Stripe id";
        if !(1..=255).contains(&s.len()) {
            return Err(IdError::Length { field: FIELD, min: 1, max: 255, got: s.chars().count() });
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
            return Err(IdError::Character { field: FIELD, allowed: "letters, digits, _ - .", found: c });
        }
        Ok(Self(s.to_owned()))
    }
}

macro_rules! plan_number {
    ($name:ident, $field:literal) => {
        #[doc = concat!("A plan's ", $field, ": a positive integer. It selects a schema script, so it is never free text.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(try_from = "u32", into = "u32")]
        pub struct $name(u32);

        impl $name {
            /// Parses the decimal text Stripe metadata carries.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IdError::Shape { field: $field, rule: "be a positive whole number" });
                }
                Self::try_from(s.parse::<u32>().expect("nine digits fit in u32"))
            }
            pub fn get(self) -> u32 {
                self.0
            }
        }
        impl TryFrom<u32> for $name {
            type Error = IdError;
            fn try_from(n: u32) -> Result<Self, IdError> {
                if n == 0 {
                    return Err(IdError::Shape { field: $field, rule: "be a positive whole number" });
                }
                Ok(Self(n))
            }
        }
        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
plan_number!(PackageId, "package id");
plan_number!(SubscriptionTypeId, "subscription type id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subdomain_is_derived_from_any_store_name() {
        for (name, slug) in [
            ("Café Müller & Söhne", "cafe-muller-sohne"),
            ("  ACME   Bakery!!", "acme-bakery"),
            ("7 Eleven", "shop-7-eleven"),
            ("Админ", "admin-shop"),
            ("北京 Tea", "bei-jing-tea"),
            ("!!!", "shop"),
            ("A", "a-shop"),
            ("x'; DROP DATABASE test; --", "x-drop-database-test"),
        ] {
            assert_eq!(TenantSlug::derive(name).as_str(), slug, "{name}");
        }
        let long = TenantSlug::derive(&"very long store name ".repeat(10));
        assert!(long.as_str().len() <= TenantSlug::MAX_LEN - 6, "{long}");
        let taken = long.with_suffix("a1b2").unwrap();
        assert!(taken.as_str().ends_with("-a1b2") && taken.as_str().len() <= TenantSlug::MAX_LEN, "{taken}");
    }

    #[test]
    fn a_stored_slug_reserved_since_is_still_read_but_not_accepted_anew() {
        assert!(TenantSlug::parse("staging").is_err());
        assert_eq!(TenantSlug::parse_stored("staging").unwrap().as_str(), "staging");
        assert!(TenantSlug::parse_stored("x'; DROP").is_err(), "only the reserved rule is relaxed");
    }

    #[test]
    fn slugs_accept_dns_labels() {
        for ok in ["acme", "acme-bakery", "a1b2", "shop-42-x"] {
            assert_eq!(TenantSlug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn slugs_refuse_hostile_and_reserved_text() {
        let long = "a".repeat(200);
        for bad in [
            "x'; DROP DATABASE test; --",
            "`acme`",
            "../etc",
            "acme/../x",
            "ac",
            "Acme",
            "acme-",
            "1acme",
            "ac--me",
            "аcme",
            /* Cyrillic а */ "acme\u{200b}",
            "acme.example",
            "acme bakery",
            "",
            &long,
            "admin",
            "api",
            "www",
            "mail",
            "vpn",
            "staging",
            "autodiscover",
            "mta-sts",
            "webmail",
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn tenant_ids_are_stable_per_checkout() {
        let a = TenantId::from_checkout_session("cs_test_a");
        assert_eq!(a, TenantId::from_checkout_session("cs_test_a"));
        assert_ne!(a, TenantId::from_checkout_session("cs_test_b"));
        assert_eq!(TenantId::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn emails_names_and_numbers() {
        assert!(ContactEmail::parse("owner@acme.example").is_ok());
        for bad in ["owner", "@acme.example", "owner@acme", "a b@c.de", "a@b@c.de", "x@.de", "<x@y.de>"] {
            assert!(ContactEmail::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(StoreName::parse("  Acme Bakery ").unwrap().as_str(), "Acme Bakery");
        assert!(StoreName::parse("   ").is_err());
        assert!(StoreName::parse("a\u{7}b").is_err());
        assert_eq!(PackageId::parse("12").unwrap().get(), 12);
        for bad in ["0", "-1", "1.5", "", "ten", "1234567890", " 1"] {
            assert!(PackageId::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(CommandId::parse("stripe:evt_123").is_ok());
        assert!(CommandId::parse("admin:8c1f-2").is_ok());
        for bad in ["evt_123", "other:x", "stripe:", "stripe:a b", "admin:x/y"] {
            assert!(CommandId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
