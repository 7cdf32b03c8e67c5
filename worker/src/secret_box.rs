//! Encryption at rest for tenant secrets (database passwords, later server admin URLs) kept in the control
//! plane, so a dump or backup of that database does not hand out every tenant's credentials. Keys live
//! outside the database, in `LANDLORD_SECRET_KEYS`; each stored value names the key that encrypted it, so a
//! new key can be put first while the old ones still decrypt until `landlord secrets rotate` has re-encrypted
//! everything. Nothing here prints key material or plaintext, and errors never quote a stored value (it may
//! be a password written before encryption at rest existed).

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore},
};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};

/// The setting keys come from, named in errors.
const SETTING: &str = "LANDLORD_SECRET_KEYS";
/// Format tag of stored values, so a later format can be told apart from this one.
const VERSION: &str = "v1";
const KEY_LEN: usize = 32;
/// Length of the standard base64 (padded) of a 32-byte key.
const ENCODED_KEY_LEN: usize = 44;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const DEV_KEY_ID: &str = "dev";
const SHAPE: &str = "each entry is `<key id>:<key>`, the id 1–24 characters of a–z, 0–9, `_` and `-`, the key \
                     32 bytes in standard base64, entries separated by commas, the key that encrypts first";
const NEW_KEY: &str = "make a key with `openssl rand -base64 32`";

/// Keys from `LANDLORD_SECRET_KEYS`: `id:base64key[,id:base64key…]`; the first encrypts, all decrypt.
#[derive(Clone)]
pub struct SecretKeys {
    /// Never empty: `parse` refuses a setting without keys. The first is the primary.
    keys: Vec<Entry>,
}

/// One key and the id stored values name it by.
struct Entry {
    id: String,
    /// Exactly 32 bytes, zeroed when dropped.
    key: SecretBox<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `setting` is `LANDLORD_SECRET_KEYS` or the dev key file; `position` counts entries from 1.
    #[error("{setting} entry {position}: {reason}")]
    BadSetting { setting: String, position: usize, reason: String },
    #[error(
        "secret was encrypted under key `{id}`, which LANDLORD_SECRET_KEYS no longer lists; add it back (after the \
         new key) and run `landlord secrets rotate`"
    )]
    UnknownKey { id: String },
    #[error(
        "stored secret is not a `v1:<key id>:<base64>` value ({reason}); it may predate encryption at rest or have \
         been cut short, so set this secret again"
    )]
    Malformed { reason: &'static str },
    /// Wrong key, altered value and wrong context look alike on purpose: telling them apart would help an attacker.
    #[error(
        "stored secret under key `{id}` does not decrypt: LANDLORD_SECRET_KEYS holds another key under that id, or \
         the value was altered or copied from another tenant or field; restore the original key for `{id}`"
    )]
    Undecryptable { id: String },
    #[error("secret key file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "secret key file {} has mode {mode:03o}, so other users may read it; run `chmod 600 {}` (and make a new key \
         if anyone may have read it)",
        .path.display(),
        .path.display()
    )]
    LoosePermissions { path: PathBuf, mode: u32 },
}

impl SecretKeys {
    /// Parses the setting's text. Ids: 1–24 chars of [a-z0-9_-], unique. Keys: standard base64 of exactly 32 bytes.
    /// Errors name `LANDLORD_SECRET_KEYS`, the entry's position and id (never key material) and say what is allowed.
    pub fn parse(text: &SecretString) -> Result<Self, SecretError> {
        Self::parse_from(text, SETTING)
    }

    /// The id that encrypts.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// All ids, primary first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether `id` may name a key: 1–24 characters of a–z, 0–9, `_` and `-` (so never the `:` values split on).
    /// A stored value is 100 characters plus the id, and the control plane's column holds 128.
    pub fn is_valid_id(id: &str) -> bool {
        (1..=24).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }

    /// `v1:<key id>:<base64(24-byte nonce || ciphertext+tag)>`, XChaCha20-Poly1305 under the primary key,
    /// with `context` as associated data (e.g. "tenant:<uuid>:db_password") so a ciphertext copied to another row or
    /// field does not decrypt. The 24-byte random nonce makes a repeat negligible without any counter to keep.
    pub fn encrypt(&self, plaintext: &SecretString, context: &str) -> String {
        let primary = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: plaintext.expose_secret().as_bytes(), aad: context.as_bytes() };
        let sealed = primary.cipher().encrypt(&nonce, payload).expect("a secret is far below the cipher's limit");
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        format!("{VERSION}:{}:{}", primary.id, STANDARD.encode(raw))
    }

    /// Reverses `encrypt` with whichever key the value names.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<SecretString, SecretError> {
        let (id, body) = split_stored(stored)?;
        let entry =
            self.keys.iter().find(|k| k.id == id).ok_or_else(|| SecretError::UnknownKey { id: id.to_owned() })?;
        let raw = STANDARD.decode(body).map_err(|_| SecretError::Malformed { reason: "its body is not base64" })?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed { reason: "it is too short to hold a nonce and a tag" });
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let undecryptable = || SecretError::Undecryptable { id: id.to_owned() };
        let payload = Payload { msg: sealed, aad: context.as_bytes() };
        let plain = entry.cipher().decrypt(XNonce::from_slice(nonce), payload).map_err(|_| undecryptable())?;
        // Boxed so the bytes are zeroed once copied into the `SecretString`.
        let plain = SecretBox::new(Box::new(plain));
        let text = std::str::from_utf8(plain.expose_secret()).map_err(|_| undecryptable())?;
        Ok(SecretString::from(text))
    }

    /// Whether `stored` is under another key than the primary (so `landlord secrets rotate` re-encrypts it).
    /// Only the prefix is read: a value not starting `v1:<key id>:` counts too (a password stored before encryption
    /// at rest, say), so that rotation tries it and reports why it cannot.
    pub fn needs_rotation(&self, stored: &str) -> bool {
        !matches!(split_stored(stored), Ok((id, _)) if id == self.primary_id())
    }

    /// A new random key, as the text one entry of the setting takes: `<id>:<base64 of 32 random bytes>`.
    /// `id` is not checked here; `parse` refuses one that `is_valid_id` does not accept.
    pub fn generate_entry(id: &str) -> SecretString {
        let mut key = SecretBox::new(Box::new(vec![0u8; KEY_LEN]));
        OsRng.fill_bytes(key.expose_secret_mut());
        // Sized exactly, so neither growing nor the conversion to a boxed `str` leaves a copy behind.
        let mut text = String::with_capacity(id.len() + 1 + ENCODED_KEY_LEN);
        text.push_str(id);
        text.push(':');
        STANDARD.encode_string(key.expose_secret(), &mut text);
        SecretString::from(text)
    }

    /// For `landlord dev`: reads the key file at `path`, or creates it (parent folders too) with a new entry `dev:<…>`,
    /// the file created with mode 0600 from the start, never widened. Returns the parsed keys and whether it was
    /// created now. A file that exists with group/other permission bits is refused with the chmod that fixes it.
    pub fn load_or_create_dev_file(path: &Path) -> Result<(Self, bool), SecretError> {
        let io = |source: std::io::Error| SecretError::Io { path: path.to_owned(), source };
        let setting = format!("secret key file {}", path.display());
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Folders made here are private too; existing ones are left as they are.
            DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(io)?;
        }
        // `create_new` fails rather than follow or reuse whatever is there, even if it appeared a moment ago.
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(mut file) => {
                let entry = Self::generate_entry(DEV_KEY_ID);
                file.write_all(entry.expose_secret().as_bytes()).map_err(io)?;
                file.write_all(b"\n").and_then(|()| file.sync_all()).map_err(io)?;
                Ok((Self::parse_from(&entry, &setting)?, true))
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut file = File::open(path).map_err(io)?;
                // Checked on the open handle, so the file read is the file checked.
                let metadata = file.metadata().map_err(io)?;
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretError::LoosePermissions { path: path.to_owned(), mode });
                }
                let mut text = String::with_capacity(usize::try_from(metadata.len()).unwrap_or_default());
                file.read_to_string(&mut text).map_err(io)?;
                Ok((Self::parse_from(&SecretString::from(text), &setting)?, false))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn parse_from(text: &SecretString, setting: &str) -> Result<Self, SecretError> {
        let mut keys: Vec<Entry> = Vec::new();
        for (index, entry) in text.expose_secret().trim().split(',').enumerate() {
            let entry = Entry::parse(entry, &keys).map_err(|reason| SecretError::BadSetting {
                setting: setting.to_owned(),
                position: index + 1,
                reason,
            })?;
            keys.push(entry);
        }
        Ok(Self { keys })
    }
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys").field("ids", &self.ids()).finish()
    }
}

impl Entry {
    /// Parses one `id:base64key`. The error is the reason, which quotes only an id already known to be valid: an
    /// invalid one may be a key pasted in the wrong place.
    fn parse(text: &str, earlier: &[Entry]) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("is empty; {SHAPE}"));
        }
        let Some((id, key_text)) = text.split_once(':') else {
            return Err(format!("has no `:` after a key id; {SHAPE}"));
        };
        if !SecretKeys::is_valid_id(id) {
            return Err(format!("its key id (not shown, in case it is key material) is not allowed; {SHAPE}"));
        }
        if let Some(first) = earlier.iter().position(|e| e.id == id) {
            let first = first + 1;
            return Err(format!("key id `{id}` is also entry {first}; ids must be unique, as stored values name keys"));
        }
        // Decoded straight into a zeroed-on-drop buffer (room to spare, so it never moves), and the decoder's error,
        // which quotes the offending byte, is dropped.
        let mut key = SecretBox::new(Box::new(Vec::with_capacity(ENCODED_KEY_LEN)));
        if STANDARD.decode_vec(key_text, key.expose_secret_mut()).is_err() {
            return Err(format!("the key of `{id}` is not standard base64 (A–Z, a–z, 0–9, `+`, `/`, `=`); {NEW_KEY}"));
        }
        let len = key.expose_secret().len();
        if len != KEY_LEN {
            return Err(format!("the key of `{id}` is {len} bytes once decoded, not {KEY_LEN}; {NEW_KEY}"));
        }
        Ok(Self { id: id.to_owned(), key })
    }

    /// Built per use from the zeroed-on-drop bytes; cheap next to the work it does.
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(self.key.expose_secret()))
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Self { id: self.id.clone(), key: SecretBox::new(Box::new(self.key.expose_secret().clone())) }
    }
}

/// Splits `v1:<key id>:<body>` into the key id and the body.
fn split_stored(stored: &str) -> Result<(&str, &str), SecretError> {
    let malformed = |reason: &'static str| SecretError::Malformed { reason };
    let rest = stored.strip_prefix(VERSION).and_then(|r| r.strip_prefix(':'));
    let rest = rest.ok_or(malformed("it does not start with `v1:`"))?;
    let (id, body) = rest.split_once(':').ok_or(malformed("it has no `:` after the key id"))?;
    if !SecretKeys::is_valid_id(id) {
        return Err(malformed("its key id is not 1–24 characters of a–z, 0–9, `_` and `-`"));
    }
    Ok((id, body))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    const CONTEXT: &str = "tenant:0b7c6f3e-8d51-4c1a-9f0e-2a4b6c8d0e1f:db_password";
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const OTHER_KEY: &str = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    fn keys(text: &str) -> SecretKeys {
        SecretKeys::parse(&secret(text)).unwrap()
    }

    fn assert_refused(text: &str, position: usize, says: &str) {
        let err = SecretKeys::parse(&secret(text)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("LANDLORD_SECRET_KEYS entry {position}: ")), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(![KEY, OTHER_KEY, "not*base64"].iter().any(|k| err.contains(k)), "key material in: {err}");
    }

    #[test]
    fn a_secret_decrypts_to_itself_and_encrypts_differently_each_time() {
        let keys = keys(&format!("k1:{KEY}"));
        let stored = keys.encrypt(&secret("hunter2"), CONTEXT);
        assert!(stored.starts_with("v1:k1:") && !stored.contains("hunter2"), "{stored}");
        assert_eq!(keys.decrypt(&stored, CONTEXT).unwrap().expose_secret(), "hunter2");
        assert_ne!(keys.encrypt(&secret("hunter2"), CONTEXT), stored);
    }

    #[test]
    fn after_a_new_key_is_put_first_old_values_still_decrypt_and_need_rotation() {
        let stored = keys(&format!("k1:{KEY}")).encrypt(&secret("pw"), CONTEXT);
        let rotated_keys = keys(&format!("k2:{OTHER_KEY}, k1:{KEY}"));
        assert_eq!((rotated_keys.primary_id(), rotated_keys.ids()), ("k2", vec!["k2", "k1"]));
        assert!(rotated_keys.needs_rotation(&stored));
        let rotated = rotated_keys.encrypt(&rotated_keys.decrypt(&stored, CONTEXT).unwrap(), CONTEXT);
        assert!(rotated.starts_with("v1:k2:") && !rotated_keys.needs_rotation(&rotated), "{rotated}");
        assert_eq!(rotated_keys.decrypt(&rotated, CONTEXT).unwrap().expose_secret(), "pw");
    }

    #[test]
    fn a_value_copied_to_another_tenant_or_field_does_not_decrypt() {
        let keys = keys(&format!("k1:{KEY}"));
        let stored = keys.encrypt(&secret("pw"), CONTEXT);
        let err = keys.decrypt(&stored, "tenant:someone-else:db_password").unwrap_err();
        assert!(matches!(&err, SecretError::Undecryptable { id } if id == "k1"), "{err}");
    }

    #[test]
    fn a_tampered_value_or_a_different_key_under_the_same_id_does_not_decrypt() {
        let stored = keys(&format!("k1:{KEY}")).encrypt(&secret("pw"), CONTEXT);
        let (prefix, body) = stored.rsplit_once(':').unwrap();
        let mut raw = STANDARD.decode(body).unwrap();
        raw[NONCE_LEN] ^= 1;
        let tampered = format!("{prefix}:{}", STANDARD.encode(&raw));
        let err = keys(&format!("k1:{KEY}")).decrypt(&tampered, CONTEXT).unwrap_err();
        assert!(matches!(err, SecretError::Undecryptable { .. }), "{err}");
        let err = keys(&format!("k1:{OTHER_KEY}")).decrypt(&stored, CONTEXT).unwrap_err();
        assert!(matches!(err, SecretError::Undecryptable { .. }), "{err}");
    }

    #[test]
    fn a_value_under_a_key_no_longer_listed_names_that_key_and_the_fix() {
        let stored = keys(&format!("k0:{KEY}")).encrypt(&secret("pw"), CONTEXT);
        let current = keys(&format!("k1:{OTHER_KEY}"));
        let err = current.decrypt(&stored, CONTEXT).unwrap_err();
        assert!(matches!(&err, SecretError::UnknownKey { id } if id == "k0"), "{err}");
        assert!(err.to_string().contains("landlord secrets rotate"), "{err}");
        assert!(current.needs_rotation(&stored));
    }

    #[test]
    fn values_not_of_the_v1_shape_are_malformed_and_never_quoted() {
        let keys = keys(&format!("k1:{KEY}"));
        for stored in ["hunter2", "v2:k1:AAAA", "v1:k1", "v1:K1:hunter2", "v1:k1:hunter2!", "v1:k1:AAAA"] {
            let err = keys.decrypt(stored, CONTEXT).unwrap_err();
            assert!(matches!(err, SecretError::Malformed { .. }), "{stored}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert!(keys.needs_rotation("hunter2"));
    }

    #[test]
    fn a_bad_id_is_refused_without_being_quoted() {
        assert_refused(&format!("K1:{KEY}"), 1, "a–z, 0–9");
        assert_refused(&format!("{KEY}:k1"), 1, "not shown");
        assert_refused(&format!("k1:{KEY},{}:{KEY}", "a".repeat(25)), 2, "1–24");
        assert_refused(KEY, 1, "no `:`");
    }

    #[test]
    fn a_key_that_is_not_base64_of_exactly_32_bytes_is_refused() {
        assert_refused("k1:not*base64", 1, "the key of `k1` is not standard base64");
        assert_refused("k1:AAAAAAAAAAAAAAAAAAAAAA==", 1, "the key of `k1` is 16 bytes once decoded, not 32");
    }

    #[test]
    fn a_duplicate_id_or_an_empty_setting_or_entry_is_refused() {
        assert_refused(&format!("k1:{KEY},k1:{OTHER_KEY}"), 2, "key id `k1` is also entry 1");
        assert_refused("", 1, "is empty");
        assert_refused(&format!("k1:{KEY},"), 2, "is empty");
    }

    #[test]
    fn debug_output_shows_the_ids_and_no_key_material() {
        let keys = keys(&format!("k2:{OTHER_KEY},k1:{KEY}"));
        assert_eq!(format!("{keys:?}"), r#"SecretKeys { ids: ["k2", "k1"] }"#);
        let copy = keys.clone();
        assert_eq!(format!("{copy:?}"), format!("{keys:?}"));
    }

    #[test]
    fn the_dev_key_file_is_created_private_and_read_back_on_the_second_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/landlord/secret-keys");
        let (first, created) = SecretKeys::load_or_create_dev_file(&path).unwrap();
        assert!(created);
        assert_eq!(first.ids(), ["dev"]);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (second, created) = SecretKeys::load_or_create_dev_file(&path).unwrap();
        assert!(!created);
        let stored = first.encrypt(&secret("pw"), CONTEXT);
        assert_eq!(second.decrypt(&stored, CONTEXT).unwrap().expose_secret(), "pw");
    }

    #[test]
    fn a_dev_key_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret-keys");
        std::fs::write(&path, format!("dev:{KEY}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKeys::load_or_create_dev_file(&path).unwrap_err();
        assert!(matches!(&err, SecretError::LoosePermissions { mode: 0o644, .. }), "{err}");
        assert!(err.to_string().contains("has mode 644, so other users may read it"), "{err}");
        assert!(err.to_string().contains(&format!("chmod 600 {}", path.display())), "{err}");
    }
}
