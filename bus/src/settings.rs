//! How Landlord reaches NATS: the servers, how it proves who it is (a creds file, an NKey seed, or a user
//! and password; all secrets), and whether the link is encrypted (`tls://` URLs, `LANDLORD_NATS_TLS_*`).
//! Nothing here prints a secret: `Debug` and [`NatsSettings::redacted_url`] leave them out.

use std::{fmt, path::PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// How Landlord authenticates to NATS.
#[derive(Clone, Default)]
pub enum NatsAuth {
    /// Whatever the URL carries (`nats://user:password@host`), or nothing.
    #[default]
    None,
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes it.
    CredsFile(PathBuf),
    /// An NKey seed (`SU…`).
    NKey(SecretString),
    UserPassword {
        user: String,
        password: SecretString,
    },
}

/// The servers and how to reach them.
#[derive(Clone, Default)]
pub struct NatsSettings {
    /// One server, or several of a cluster comma-separated.
    pub url: String,
    pub auth: NatsAuth,
    /// A CA certificate (PEM) to trust besides the system roots, for servers with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to talk to a server that does not offer TLS.
    pub tls_required: bool,
}

impl NatsSettings {
    /// Plain settings for `url`, as tests and tools use.
    pub fn new(url: &str) -> Self {
        Self { url: url.to_owned(), ..Self::default() }
    }

    /// Settings from their variables, refusing combinations that cannot be meant: two ways to
    /// authenticate, a user without a password, files that do not exist.
    pub fn from_parts(
        url: &str,
        creds_file: Option<String>,
        nkey_seed: Option<SecretString>,
        user: Option<String>,
        password: Option<SecretString>,
        tls_ca_file: Option<String>,
        tls_required: bool,
    ) -> Result<Self, String> {
        let methods = [creds_file.is_some(), nkey_seed.is_some(), user.is_some() || password.is_some()];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err("set only one of LANDLORD_NATS_CREDS_FILE, LANDLORD_NATS_NKEY_SEED and \
                        LANDLORD_NATS_USER/LANDLORD_NATS_PASSWORD"
                .into());
        }
        let existing = |var: &str, path: String| {
            let path = PathBuf::from(path);
            if path.is_file() { Ok(path) } else { Err(format!("{var}: no file at {}", path.display())) }
        };
        let auth = match (creds_file, nkey_seed, user, password) {
            (Some(path), ..) => NatsAuth::CredsFile(existing("LANDLORD_NATS_CREDS_FILE", path)?),
            (_, Some(seed), ..) => NatsAuth::NKey(seed),
            (_, _, Some(user), Some(password)) => NatsAuth::UserPassword { user, password },
            (_, _, Some(_), None) | (_, _, None, Some(_)) => {
                return Err("LANDLORD_NATS_USER and LANDLORD_NATS_PASSWORD go together".into());
            }
            _ => NatsAuth::None,
        };
        let tls_ca_file = tls_ca_file.map(|p| existing("LANDLORD_NATS_TLS_CA_FILE", p)).transpose()?;
        Ok(Self { url: url.to_owned(), auth, tls_ca_file, tls_required })
    }

    /// The URL with any password in it replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The options async-nats connects with, secrets included.
    pub(crate) async fn connect_options(&self) -> std::io::Result<async_nats::ConnectOptions> {
        let mut opts = async_nats::ConnectOptions::new();
        opts = match &self.auth {
            NatsAuth::None => opts,
            NatsAuth::CredsFile(path) => opts.credentials_file(path).await?,
            NatsAuth::NKey(seed) => opts.nkey(seed.expose_secret().to_owned()),
            NatsAuth::UserPassword { user, password } => {
                opts.user_and_password(user.clone(), password.expose_secret().to_owned())
            }
        };
        if let Some(ca) = &self.tls_ca_file {
            opts = opts.add_root_certificates(ca.clone());
        }
        Ok(opts.require_tls(self.tls_required))
    }
}

/// Checks `LANDLORD_NATS_URL` the way the NATS client reads it: comma-separated `nats://`, `tls://`,
/// `ws://` addresses or bare `host:port`. The error never repeats the value (it may hold a password).
pub fn check_nats_url(url: &str) -> Result<(), String> {
    for part in url.split(',').map(str::trim) {
        part.parse::<async_nats::ServerAddr>()
            .map_err(|e| format!("LANDLORD_NATS_URL has a server address that is not valid ({e})"))?;
    }
    Ok(())
}

/// `nats://user:secret@host:4222,nats://…` with each password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let server = server.trim();
            match (server.find("://"), server.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let (head, rest) = server.split_at(scheme + 3);
                    let userinfo = &rest[..at - scheme - 3];
                    let host = &server[at..];
                    match userinfo.split_once(':') {
                        Some((user, _)) => format!("{head}{user}:***{host}"),
                        // A lone token (`nats://token@host`) is a secret too.
                        None => format!("{head}***{host}"),
                    }
                }
                _ => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            NatsAuth::None => "none".to_owned(),
            NatsAuth::CredsFile(path) => format!("creds file {}", path.display()),
            NatsAuth::NKey(_) => "nkey seed".to_owned(),
            NatsAuth::UserPassword { user, .. } => format!("user {user} with a password"),
        };
        f.debug_struct("NatsSettings")
            .field("url", &self.redacted_url())
            .field("auth", &auth)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_required", &self.tls_required)
            .finish()
    }
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::CredsFile(_) => "CredsFile",
            Self::NKey(_) => "NKey([hidden])",
            Self::UserPassword { .. } => "UserPassword([hidden])",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_never_print() {
        assert_eq!(
            redact_url("nats://landlord:s3cret@a:4222, tls://tok3n@b:4222,nats://c:4222"),
            "nats://landlord:***@a:4222,tls://***@b:4222,nats://c:4222"
        );
        let s = NatsSettings::from_parts(
            "nats://x:pw1@h:4222",
            None,
            None,
            Some("landlord".into()),
            Some(SecretString::from("pw2")),
            None,
            true,
        )
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("pw1") && !printed.contains("pw2"), "{printed}");
    }

    #[test]
    fn conflicting_or_incomplete_settings_are_refused_with_the_variables_named() {
        let pw = || Some(SecretString::from("pw"));
        let err = NatsSettings::from_parts("nats://h", None, pw(), Some("u".into()), pw(), None, false).unwrap_err();
        assert!(err.contains("LANDLORD_NATS_NKEY_SEED"), "{err}");
        let err = NatsSettings::from_parts("nats://h", None, None, Some("u".into()), None, None, false).unwrap_err();
        assert!(err.contains("LANDLORD_NATS_PASSWORD"), "{err}");
        let err =
            NatsSettings::from_parts("nats://h", Some("/nonexistent.creds".into()), None, None, None, None, false)
                .unwrap_err();
        assert!(err.contains("LANDLORD_NATS_CREDS_FILE"), "{err}");
    }
}
