//! Password verifiers computed by Landlord, so a tenant's password never travels as statement text that a
//! server may write to its log (on an error, in an audit plugin, in `pg_stat_activity`). The server stores
//! the verifier exactly as it would have computed it, and the tenant's application logs in with the
//! password as usual.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// PostgreSQL's default iteration count for `scram_iterations`.
const SCRAM_ITERATIONS: u32 = 4096;

/// A `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` verifier (RFC 5802, RFC 7677), the form
/// PostgreSQL stores and accepts in `CREATE ROLE … PASSWORD '…'` without ever seeing the password.
pub fn scram_sha256(password: &SecretString) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    scram_sha256_with(password, &salt, SCRAM_ITERATIONS)
}

/// [`scram_sha256`] with a chosen salt and iteration count (for test vectors).
pub fn scram_sha256_with(password: &SecretString, salt: &[u8], iterations: u32) -> String {
    // Landlord's passwords are ASCII letters and digits, which SASLprep leaves as they are.
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.expose_secret().as_bytes(), salt, iterations, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// MariaDB/MySQL `mysql_native_password` hash, `*` and the upper-case hex of SHA1(SHA1(password)), for
/// `IDENTIFIED BY PASSWORD '…'`. Knowing it is not enough to log in: the handshake needs SHA1(password).
pub fn mysql_native_password(password: &SecretString) -> String {
    let twice = Sha1::digest(Sha1::digest(password.expose_secret().as_bytes()));
    format!("*{}", hex::encode_upper(twice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mysql_hash_matches_the_servers_own_password_function() {
        // MariaDB: SELECT PASSWORD('secret')
        let hash = mysql_native_password(&SecretString::from("secret"));
        assert_eq!(hash, "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
    }

    #[test]
    fn the_scram_verifier_matches_an_independent_computation() {
        // Python: hashlib.pbkdf2_hmac('sha256', b'pencil', salt, 4096) and hmac/sha256 as in RFC 7677.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_sha256_with(&SecretString::from("pencil"), &salt, 4096);
        assert_eq!(
            verifier,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn each_scram_verifier_has_its_own_salt() {
        let pw = SecretString::from("same-password");
        assert_ne!(scram_sha256(&pw), scram_sha256(&pw));
        assert!(!scram_sha256(&pw).contains("same-password"));
    }
}
