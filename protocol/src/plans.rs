//! The plan catalogue (`plans.toml`): which plans exist, what they are called and which Stripe prices buy
//! them. The ingress reads it to turn a purchase into a plan, the worker to check a plan change; both
//! must read the same file. A catalogue that parses is consistent: every plan's package and type are
//! named, no plan is listed twice and no price buys two plans.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{IdError, PackageId, StripeId, SubscriptionTypeId};

/// The catalogue as shipped (the repository's `plans.toml`), used when no file is configured or present.
pub const SAMPLE_PLANS: &str = include_str!("../../plans.toml");

/// One plan: a package and a subscription type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub package_id: PackageId,
    pub subscription_type_id: SubscriptionTypeId,
    /// For people: the plan's own name, or "<package> <subscription type>".
    pub name: String,
    pub stripe_prices: Vec<StripeId>,
    /// Where its tenants' databases live: on a shared server with others, or on a server of their own.
    pub placement: Placement,
    /// The database engine its tenants get; `None`: the engine of the default server
    /// (`LANDLORD_TENANT_DB_URL`).
    pub engine: Option<DbEngine>,
}

/// Where a plan's tenants' databases live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The least-loaded open shared server of the plan's engine with room.
    #[default]
    Shared,
    /// A server of the tenant's own, made from `LANDLORD_DEDICATED_TEMPLATE` or handed over by an operator.
    Dedicated,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Shared, Self::Dedicated].into_iter().find(|p| p.as_str() == s)
    }
}

/// A tenant database server's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbEngine {
    /// MySQL or MariaDB.
    Mysql,
    Postgres,
}

impl DbEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mysql => "mysql",
            Self::Postgres => "postgres",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Mysql, Self::Postgres].into_iter().find(|p| p.as_str() == s)
    }

    /// The engine an admin URL's scheme names (`mysql://`, `mariadb://`, `postgres://`, `postgresql://`).
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once("://")?.0;
        match scheme {
            "mysql" | "mariadb" => Some(Self::Mysql),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// A consistent catalogue and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    source: String,
    plans: Vec<Plan>,
    by_price: HashMap<StripeId, usize>,
}

/// Why a catalogue cannot be used. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PlansError {
    #[error("cannot read the plans file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the plans file {source_name} is not valid: {message}")]
    Invalid { source_name: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    packages: BTreeMap<String, String>,
    subscription_types: BTreeMap<String, String>,
    #[serde(default)]
    plans: Vec<RawPlan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    package_id: u32,
    subscription_type_id: u32,
    name: Option<String>,
    #[serde(default)]
    stripe_prices: Vec<String>,
    #[serde(default)]
    placement: Placement,
    engine: Option<DbEngine>,
}

/// Longest display name a package, type or plan may have.
const MAX_NAME: usize = 100;

impl Plans {
    /// The catalogue as shipped.
    pub fn sample() -> Self {
        Self::parse(SAMPLE_PLANS, "the built-in catalogue").expect("the shipped plans.toml is valid")
    }

    /// Where the catalogue comes from: `configured` (`LANDLORD_PLANS`) when set, else `plans.toml` in the
    /// working directory when it exists, else the built-in catalogue (`None`).
    pub fn locate(configured: Option<&str>) -> Option<PathBuf> {
        match configured.map(str::trim).filter(|s| !s.is_empty()) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("plans.toml")).filter(|p| p.is_file()),
        }
    }

    /// Reads the catalogue [`Plans::locate`] finds.
    pub fn load(configured: Option<&str>) -> Result<Self, PlansError> {
        match Self::locate(configured) {
            Some(path) => Self::read(&path),
            None => Ok(Self::sample()),
        }
    }

    pub fn read(path: &Path) -> Result<Self, PlansError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| PlansError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a catalogue; `source_name` says where it came from in errors and logs.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, PlansError> {
        let invalid = |message: String| PlansError::Invalid { source_name: source_name.to_owned(), message };
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let packages = named_ids(&raw.packages, "packages", PackageId::parse).map_err(invalid)?;
        let types =
            named_ids(&raw.subscription_types, "subscription_types", SubscriptionTypeId::parse).map_err(invalid)?;
        let mut plans: Vec<Plan> = Vec::new();
        let mut by_price = HashMap::new();
        for (i, p) in raw.plans.into_iter().enumerate() {
            let at = format!("plan {} (package {}, type {})", i + 1, p.package_id, p.subscription_type_id);
            let package_id = PackageId::try_from(p.package_id).map_err(|e| invalid(format!("{at}: {e}")))?;
            let subscription_type_id =
                SubscriptionTypeId::try_from(p.subscription_type_id).map_err(|e| invalid(format!("{at}: {e}")))?;
            let package =
                packages.get(&package_id).ok_or_else(|| invalid(format!("{at}: package not in [packages]")))?;
            let kind = types
                .get(&subscription_type_id)
                .ok_or_else(|| invalid(format!("{at}: subscription type not in [subscription_types]")))?;
            if plans.iter().any(|q| (q.package_id, q.subscription_type_id) == (package_id, subscription_type_id)) {
                return Err(invalid(format!("{at} is listed twice")));
            }
            let name = p.name.unwrap_or_else(|| format!("{package} {kind}"));
            check_name(&name).map_err(|e| invalid(format!("{at}: name {e}")))?;
            let mut prices = Vec::new();
            for price in p.stripe_prices {
                let id = StripeId::parse(&price).map_err(|e| invalid(format!("{at}: price {price:?}: {e}")))?;
                if let Some(other) = by_price.insert(id.clone(), plans.len()) {
                    let other = &plans[other];
                    return Err(invalid(format!("{at}: price {price} already buys plan {}", other.name)));
                }
                prices.push(id);
            }
            plans.push(Plan {
                package_id,
                subscription_type_id,
                name,
                stripe_prices: prices,
                placement: p.placement,
                engine: p.engine,
            });
        }
        if plans.is_empty() {
            return Err(invalid("it lists no [[plans]]".into()));
        }
        Ok(Self { source: source_name.to_owned(), plans, by_price })
    }

    /// Where the catalogue was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn all(&self) -> &[Plan] {
        &self.plans
    }

    /// The plan of this package and type, if the catalogue has it.
    pub fn get(&self, package: PackageId, kind: SubscriptionTypeId) -> Option<&Plan> {
        self.plans.iter().find(|p| p.package_id == package && p.subscription_type_id == kind)
    }

    /// The plan a Stripe price buys.
    pub fn for_price(&self, price: &StripeId) -> Option<&Plan> {
        self.by_price.get(price).map(|&i| &self.plans[i])
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let len = name.trim().chars().count();
    if len == 0 || len > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn named_ids<T: Eq + std::hash::Hash>(
    table: &BTreeMap<String, String>,
    section: &str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<HashMap<T, String>, String> {
    let mut out = HashMap::new();
    for (id, name) in table {
        let parsed = parse(id).map_err(|e| format!("[{section}] {id:?}: {e}"))?;
        check_name(name).map_err(|e| format!("[{section}] {id}: name {e}"))?;
        out.insert(parsed, name.clone());
    }
    if out.is_empty() {
        return Err(format!("[{section}] is empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(n: u32) -> PackageId {
        PackageId::try_from(n).unwrap()
    }
    fn kind(n: u32) -> SubscriptionTypeId {
        SubscriptionTypeId::try_from(n).unwrap()
    }

    #[test]
    fn the_sample_catalogue_is_the_products() {
        let plans = Plans::sample();
        assert_eq!(plans.all().len(), 8);
        assert_eq!(plans.get(pkg(10), kind(10)).unwrap().name, "Essential General");
        assert_eq!(plans.get(pkg(20), kind(20)).unwrap().name, "Professional Made to Measure");
        assert_eq!(plans.get(pkg(40), kind(10)).unwrap().name, "Enterprise");
        assert!(plans.get(pkg(1), kind(1)).is_none());
        let yearly = StripeId::parse("price_premium_general_yearly").unwrap();
        let plan = plans.for_price(&yearly).unwrap();
        assert_eq!((plan.package_id, plan.subscription_type_id), (pkg(30), kind(10)));
        assert!(plans.for_price(&StripeId::parse("price_unknown").unwrap()).is_none());
        assert_eq!(plans.get(pkg(10), kind(10)).unwrap().placement, Placement::Shared);
        assert_eq!(plans.get(pkg(40), kind(10)).unwrap().placement, Placement::Dedicated);
    }

    #[test]
    fn a_plan_names_its_placement_and_engine() {
        let plan = "[[plans]]\npackage_id = 10\nsubscription_type_id = 10\n";
        let parsed =
            Plans::parse(&format!("{HEAD}{plan}placement = \"dedicated\"\nengine = \"postgres\"\n"), "t").unwrap();
        let p = parsed.get(pkg(10), kind(10)).unwrap();
        assert_eq!((p.placement, p.engine), (Placement::Dedicated, Some(DbEngine::Postgres)));
        let default = Plans::parse(&format!("{HEAD}{plan}"), "t").unwrap();
        assert_eq!(default.get(pkg(10), kind(10)).unwrap().placement, Placement::Shared);
        assert!(err(&format!("{plan}placement = \"cloud\"\n")).contains("unknown variant"));
        assert!(err(&format!("{plan}engine = \"oracle\"\n")).contains("unknown variant"));
        assert_eq!(DbEngine::of_url("mariadb://root@h"), Some(DbEngine::Mysql));
        assert_eq!(DbEngine::of_url("postgresql://u@h/db"), Some(DbEngine::Postgres));
        assert_eq!(DbEngine::of_url("http://h"), None);
    }

    const HEAD: &str = "[packages]\n10 = \"A\"\n[subscription_types]\n10 = \"G\"\n";

    fn err(body: &str) -> String {
        Plans::parse(&format!("{HEAD}{body}"), "test.toml").unwrap_err().to_string()
    }

    #[test]
    fn an_inconsistent_catalogue_is_refused_naming_the_problem() {
        let plan = "[[plans]]\npackage_id = 10\nsubscription_type_id = 10\n";
        assert!(err("").contains("no [[plans]]"));
        assert!(err("[[plans]]\npackage_id = 20\nsubscription_type_id = 10\n").contains("package not in [packages]"));
        assert!(err("[[plans]]\npackage_id = 10\nsubscription_type_id = 20\n").contains("not in [subscription_types]"));
        assert!(err(&format!("{plan}{plan}")).contains("listed twice"));
        assert!(err(&format!("{plan}stripe_prices = [\"price 1\"]\n")).contains("price \"price 1\""));
        assert!(err(&format!("{plan}colour = 1\n")).contains("unknown field"));
        assert!(err(&format!("{plan}name = \"\"\n")).contains("1 to 100"));
        assert!(err("[[plans]]\npackage_id = 0\nsubscription_type_id = 10\n").contains("plan 1 (package 0, type 10)"));
        let twice = "[[plans]]\npackage_id = 10\nsubscription_type_id = 10\nstripe_prices = [\"price_x\"]\n\
                     [[plans]]\npackage_id = 10\nsubscription_type_id = 11\nstripe_prices = [\"price_x\"]\n";
        let twice = format!("[packages]\n10 = \"A\"\n[subscription_types]\n10 = \"G\"\n11 = \"H\"\n{twice}");
        let e = Plans::parse(&twice, "test.toml").unwrap_err().to_string();
        assert!(e.contains("price_x already buys plan A G") && e.contains("test.toml"), "{e}");
        let bad_id = Plans::parse("[packages]\nten = \"A\"\n[subscription_types]\n10 = \"G\"\n", "t").unwrap_err();
        assert!(bad_id.to_string().contains("[packages] \"ten\""), "{bad_id}");
    }

    #[test]
    fn without_a_setting_or_a_file_the_built_in_catalogue_is_used() {
        // The test runs in the crate's folder, which has no plans.toml.
        assert_eq!(Plans::locate(None), None);
        assert_eq!(Plans::locate(Some("  ")), None);
        assert_eq!(Plans::locate(Some("/etc/landlord/plans.toml")), Some(PathBuf::from("/etc/landlord/plans.toml")));
        let missing = Plans::load(Some("/nonexistent/plans.toml")).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/plans.toml"), "{missing}");
    }
}
