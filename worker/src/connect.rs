//! Opening database pools without a password in anything that may be printed. sea-orm records its
//! connect options (the URL included) in a tracing span, so a URL carrying a password would reach the
//! logs at trace level. The password is taken out of the URL here and handed to the driver's own options,
//! which sea-orm never prints. Statement logging and statements in spans are off: some statements name
//! a password verifier.

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::{ExposeSecret, SecretString};

/// sea-orm options for `url` with its password moved out of the printable part.
pub fn options(url: &SecretString) -> Result<ConnectOptions, DbErr> {
    let mut parsed = url::Url::parse(url.expose_secret())
        .map_err(|e| DbErr::Custom(format!("the database URL does not parse ({e})")))?;
    let password = parsed
        .password()
        .map(|p| SecretString::from(percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()));
    if password.is_some() {
        parsed.set_password(None).map_err(|()| DbErr::Custom("the database URL cannot carry a password".into()))?;
    }
    let mut opts = ConnectOptions::new(parsed.to_string());
    opts.sqlx_logging(false).record_stmt_in_spans(false);
    if let Some(password) = password {
        let pg = password.clone();
        opts.map_sqlx_mysql_opts(move |o| o.password(password.expose_secret()));
        opts.map_sqlx_postgres_opts(move |o| o.password(pg.expose_secret()));
    }
    Ok(opts)
}

/// Connects with [`options`], adjusted by `tune` (pool sizes, timeouts, laziness).
pub async fn connect(url: &SecretString, tune: impl FnOnce(&mut ConnectOptions)) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url)?;
    tune(&mut opts);
    Database::connect(opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printable_options_hold_no_password() {
        let url = SecretString::from("postgres://landlord:s%3Acr%40t-pw@db.internal:5432/landlord");
        let opts = options(&url).unwrap();
        let printed = format!("{opts:?}");
        assert!(!printed.contains("s%3Acr%40t-pw") && !printed.contains("s:cr@t-pw"), "{printed}");
        assert!(printed.contains("postgres://landlord@db.internal:5432/landlord"), "{printed}");
    }
}
