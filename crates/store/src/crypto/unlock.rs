//! Creating an encrypted repository, unlocking it with a password, and its keys
//! (`diskray init --encrypt`, `diskray key add|list|remove`).

use super::keyfile::{KdfParams, KeyObject, MAX_KEY_OBJECT_LEN};
use super::{hex, Keys, MasterKey, AEAD_NAME, AES_GCM_NAME, DIGEST_NAME, KEYED_BLAKE3_NAME};
use crate::backend::Backend;
use crate::config::{Config, Encryption, ENCRYPTED_FORMAT_VERSION};
use crate::repo::{read_bounded, Repo};
use diskray_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Most key objects read: each costs one Argon2 run when a password is tried, so the
/// bound also bounds the time a wrong password takes.
pub const MAX_KEYS: usize = 256;

/// A password, wiped from memory when dropped.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// A password from its bytes (a trailing newline is the caller's to strip).
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(Zeroizing::new(bytes))
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// What opens an encrypted repository: a password (tried on each key object) or the
/// master key itself, from a key file ([`KeyFile`]).
#[derive(Debug)]
pub enum Credential {
    /// A password.
    Password(Password),
    /// The master key, read from a key file.
    MasterKey(MasterKey),
}

impl From<Password> for Credential {
    fn from(p: Password) -> Credential {
        Credential::Password(p)
    }
}

/// Gives the credential of an encrypted repository; called only when the config says the
/// repository is encrypted, so a clear repository never asks.
pub type Unlock<'a> = &'a dyn Fn() -> Result<Credential>;

/// Largest key file read: its JSON is about 200 bytes.
pub const MAX_KEY_FILE_LEN: u64 = 4096;
/// The format name of a key file.
pub const KEY_FILE_FORMAT: &str = "diskray-master-key";

/// A key file: the master key in clear, for hosts that open the repository without a
/// password (`key export-master`, `--key-file`). Whoever reads it reads the repository.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Always [`KEY_FILE_FORMAT`].
    pub format: String,
    /// The repository it opens (its config's `encryption.repository`).
    pub repository: String,
    /// The 64-byte master key (AEAD key, then MAC key), hex.
    pub key: String,
}

impl KeyFile {
    /// Reads a key file (bounded) and its master key.
    pub fn read(path: &Path) -> Result<(String, MasterKey)> {
        let bytes = read_bounded(path, MAX_KEY_FILE_LEN)?;
        let kf: KeyFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(path, 0, format!("not a diskray key file: {e}")))?;
        let key = super::unhex::<{ 2 * super::KEY_LEN }>(&kf.key);
        match key {
            Some(k) if kf.format == KEY_FILE_FORMAT => {
                Ok((kf.repository, MasterKey::from_bytes(&Zeroizing::new(k))))
            }
            _ => Err(Error::corrupt(
                path,
                0,
                "not a diskray key file (format or key length)",
            )),
        }
    }
}

/// The [`Unlock`] of callers that have no password: an encrypted repository is refused.
pub fn no_password() -> Result<Credential> {
    Err(Error::refused(
        Path::new("password"),
        "the repository is encrypted and no password was given",
    ))
}

/// How `init --encrypt` and `key add` derive a key from a password.
#[derive(Debug, Clone, Copy)]
pub struct KdfChoice {
    /// Argon2 memory in MiB.
    pub memory_mib: u32,
    /// Argon2 passes.
    pub iterations: u32,
}

impl Default for KdfChoice {
    fn default() -> Self {
        KdfChoice {
            memory_mib: super::keyfile::DEFAULT_KDF_MEMORY_MIB,
            iterations: super::keyfile::DEFAULT_KDF_ITERATIONS,
        }
    }
}

/// One key as `key list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Its id (object `keys/<id>`).
    pub id: String,
    /// When it was made.
    pub created: String,
    /// Where.
    pub host: String,
    /// By whom.
    pub username: String,
    /// Argon2 memory, KiB.
    pub kdf_memory_kib: u32,
    /// Argon2 passes.
    pub kdf_iterations: u32,
    /// The key this process opened the repository with.
    pub current: bool,
}

/// `key list`'s record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyList {
    /// The keys, by id.
    pub keys: Vec<KeyInfo>,
}

impl std::fmt::Display for KeyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.keys.is_empty() {
            // `init --encrypt --key-file`: only the key file opens the repository.
            return writeln!(
                f,
                "no keys: no password opens the repository, only its key file (`key add` adds one)"
            );
        }
        writeln!(
            f,
            " {:<16}  {:<20}  {:<16}  {:<12}  KDF",
            "ID", "CREATED", "HOST", "USER"
        )?;
        for k in &self.keys {
            let mark = if k.current { '*' } else { ' ' };
            writeln!(
                f,
                "{mark}{:<16}  {:<20}  {:<16}  {:<12}  argon2id {} MiB, {} passes",
                k.id,
                k.created,
                k.host,
                k.username,
                k.kdf_memory_kib / 1024,
                k.kdf_iterations
            )?;
        }
        Ok(())
    }
}

/// The bytes the config's MAC covers: a domain tag and the compact JSON of the config
/// without its MAC.
fn config_mac_input(config: &Config) -> Vec<u8> {
    let mut c = config.clone();
    c.mac = None;
    let mut out = b"diskray-config\0".to_vec();
    out.extend(serde_json::to_vec(&c).unwrap_or_default());
    out
}

/// The key prefix of key objects.
const KEYS: &str = "keys/";

/// Creates object `key` holding `bytes`, failing if it exists (two `init`s at once: one
/// wins whole, the other is refused).
fn create_new_durably(backend: &dyn Backend, key: &str, bytes: &[u8]) -> Result<()> {
    if !backend.put_new(key, bytes)? {
        return Err(Error::refused(
            &backend.name_of(key),
            "exists already (another diskray made it at the same time)",
        ));
    }
    Ok(())
}

/// `init`'s check: a repository is made only where there is none (nor anything else).
fn refuse_unless_vacant(backend: &dyn Backend) -> Result<()> {
    if !backend.is_vacant()? {
        return Err(Error::refused(
            &backend.location(),
            "is not empty: a repository is made in a new or empty directory or prefix",
        ));
    }
    Ok(())
}

/// The config of a new encrypted repository sealed by `master` (authenticated by its
/// MAC), and the repository's new random id.
fn encrypted_config(
    master: &MasterKey,
    chunk_size: u64,
    backend: &dyn Backend,
) -> Result<(Config, String)> {
    let mut id = [0u8; 16];
    super::random_bytes(&mut id)?;
    let repository = hex(&id);
    let mut config = Config::new(chunk_size);
    config.version = ENCRYPTED_FORMAT_VERSION;
    config.digest = KEYED_BLAKE3_NAME.into();
    config.encryption = Some(Encryption {
        aead: AES_GCM_NAME.into(),
        kdf: super::keyfile::KDF_NAME.into(),
        digest: KEYED_BLAKE3_NAME.into(),
        repository: repository.clone(),
    });
    let keys = configured(
        Keys::new(MasterKey::from_bytes(&master.to_bytes()), ""),
        AES_GCM_NAME,
        KEYED_BLAKE3_NAME,
        &backend.name_of("config"),
    )?;
    config.mac = Some(hex(&keys.mac(&config_mac_input(&config))));
    Ok((config, repository))
}

/// Writes `master`, the master key of `repository`, to the new key file `out` (mode
/// 0600; an existing file is never replaced).
fn write_key_file(out: &Path, repository: &str, master: &MasterKey) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let kf = KeyFile {
        format: KEY_FILE_FORMAT.into(),
        repository: repository.into(),
        key: hex(&master.to_bytes()[..]),
    };
    let bytes = Zeroizing::new(serde_json::to_vec_pretty(&kf).unwrap_or_default());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| Error::Open {
            path: out.to_path_buf(),
            source: e,
        })?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(out, 0, e))
}

impl Repo {
    /// `diskray init`: creates a repository in `backend` (a missing or empty directory or
    /// prefix),
    /// clear or, given a password, encrypted with a new random master key.
    pub fn init(
        root: &Path,
        chunk_size: u64,
        encrypt: Option<(&Password, KdfChoice)>,
    ) -> Result<Repo> {
        Repo::init_backend(
            crate::backend::at(root, &Default::default())?,
            chunk_size,
            encrypt,
        )
    }

    /// [`Repo::init`] in `backend`.
    pub fn init_backend(
        backend: Arc<dyn Backend>,
        chunk_size: u64,
        encrypt: Option<(&Password, KdfChoice)>,
    ) -> Result<Repo> {
        refuse_unless_vacant(&*backend)?;
        let Some((password, kdf)) = encrypt else {
            return Repo::open_or_create_backend(backend, chunk_size, &no_password);
        };
        crate::index::chunk_count(0, chunk_size)?;
        let params = KdfParams::new(kdf.memory_mib, kdf.iterations)?;
        backend.create()?;
        let master = MasterKey::random()?;
        let (config, repository) = encrypted_config(&master, chunk_size, &*backend)?;
        let key = KeyObject::create(&master, password.bytes(), params, &repository)?;
        create_new_durably(&*backend, &format!("{KEYS}{}", key.id), &key.to_bytes())?;
        let bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
        create_new_durably(&*backend, "config", &bytes)?;
        Repo::open_backend_with(backend, &|| {
            Ok(Password::new(password.bytes().to_vec()).into())
        })
    }

    /// `diskray init --encrypt --key-file FILE`: creates an encrypted repository in
    /// `backend` (a missing or empty directory or prefix) whose new random master key is
    /// written to the new key file `key_file` (mode 0600) and to no key object: the key
    /// file opens it, and `key add` gives it a password later. The key file is written
    /// first; if the repository cannot be made, it is removed again.
    pub fn init_with_key_file(
        backend: Arc<dyn Backend>,
        chunk_size: u64,
        key_file: &Path,
    ) -> Result<Repo> {
        refuse_unless_vacant(&*backend)?;
        crate::index::chunk_count(0, chunk_size)?;
        let master = MasterKey::random()?;
        let (config, repository) = encrypted_config(&master, chunk_size, &*backend)?;
        write_key_file(key_file, &repository, &master)?;
        let made = (|| {
            backend.create()?;
            let bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
            create_new_durably(&*backend, "config", &bytes)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(key_file);
            return Err(e);
        }
        Repo::open_backend_with(backend, &|| {
            Ok(Credential::MasterKey(MasterKey::from_bytes(
                &master.to_bytes(),
            )))
        })
    }

    /// `key list`: every key object of the repository.
    pub fn key_list(&self) -> Result<KeyList> {
        self.encrypted_parts()?;
        let current = self.keys().map(|k| k.key_id().to_string());
        let mut keys = Vec::new();
        for (path, k) in read_key_objects(self.backend())? {
            let k = k.map_err(|e| e.unwrap_or_else(|| Error::corrupt(&path, 0, "unreadable")))?;
            keys.push(KeyInfo {
                current: current.as_deref() == Some(k.id.as_str()),
                id: k.id,
                created: k.created,
                host: k.host,
                username: k.username,
                kdf_memory_kib: k.kdf.memory_kib,
                kdf_iterations: k.kdf.iterations,
            });
        }
        Ok(KeyList { keys })
    }

    /// `key add`: wraps the master key under a new password.
    pub fn key_add(&self, password: &Password, kdf: KdfChoice) -> Result<KeyInfo> {
        let (keys, enc) = self.encrypted_parts()?;
        if read_key_objects(self.backend())?.len() >= MAX_KEYS {
            return Err(Error::refused(
                &self.backend().name_of(KEYS),
                format!("the repository has {MAX_KEYS} keys, the most it may"),
            ));
        }
        let params = KdfParams::new(kdf.memory_mib, kdf.iterations)?;
        let k = KeyObject::create(keys.master(), password.bytes(), params, &enc.repository)?;
        create_new_durably(self.backend(), &format!("{KEYS}{}", k.id), &k.to_bytes())?;
        Ok(KeyInfo {
            id: k.id,
            created: k.created,
            host: k.host,
            username: k.username,
            kdf_memory_kib: k.kdf.memory_kib,
            kdf_iterations: k.kdf.iterations,
            current: false,
        })
    }

    /// `key remove`: deletes key `id`; refuses the key in use and the last key.
    pub fn key_remove(&self, id: &str) -> Result<()> {
        let (keys, _) = self.encrypted_parts()?;
        let all = read_key_objects(self.backend())?;
        let key = format!("{KEYS}{id}");
        let path = self.backend().name_of(&key);
        if !all.iter().any(|(p, _)| *p == path) {
            return Err(Error::refused(
                &path,
                "no such key (`diskray key list` lists them)",
            ));
        }
        if keys.key_id() == id {
            return Err(Error::refused(
                &path,
                "is the key this password opened; remove it with another key's password",
            ));
        }
        if all.len() <= 1 {
            return Err(Error::refused(&path, "is the repository's last key"));
        }
        self.backend().delete(&key)
    }

    /// `key export-master`: writes the master key to a new key file `out` (mode 0600).
    pub fn export_master_key(&self, out: &Path) -> Result<()> {
        let (keys, enc) = self.encrypted_parts()?;
        write_key_file(out, &enc.repository, keys.master())
    }

    /// Key objects that are damaged, with what is wrong (`verify` reports them).
    pub fn damaged_keys(&self) -> Result<Vec<(PathBuf, String)>> {
        if self.keys().is_none() {
            return Ok(Vec::new());
        }
        let enc = self.encrypted_parts()?.1;
        let mut out = Vec::new();
        for (path, k) in read_key_objects(self.backend())? {
            match k {
                Ok(k) if k.repository != enc.repository => {
                    out.push((path, "names another repository".to_string()))
                }
                Ok(_) => {}
                Err(e) => out.push((path, e.map_or("unreadable".into(), |e| e.to_string()))),
            }
        }
        Ok(out)
    }

    fn encrypted_parts(&self) -> Result<(&Arc<Keys>, &Encryption)> {
        match (self.keys(), self.config().encryption.as_ref()) {
            (Some(k), Some(e)) => Ok((k, e)),
            _ => Err(Error::refused(
                self.root(),
                "is a clear repository: it has no keys (`diskray init --encrypt` makes an encrypted one)",
            )),
        }
    }
}

/// Every key object, by path: parsed, or why not (`None` for an I/O error with no path).
type KeyRead = (PathBuf, std::result::Result<KeyObject, Option<Error>>);

/// Reads every key object under `keys/`, at most [`MAX_KEYS`].
fn read_key_objects(backend: &dyn Backend) -> Result<Vec<KeyRead>> {
    let mut keys: Vec<String> = backend
        .list(KEYS)?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !k[KEYS.len()..].contains('/'))
        .collect();
    if keys.len() > MAX_KEYS {
        return Err(Error::corrupt(
            &backend.name_of(KEYS),
            0,
            format!(
                "{} key objects, more than the {MAX_KEYS} a repository may hold",
                keys.len()
            ),
        ));
    }
    keys.sort();
    Ok(keys
        .into_iter()
        .map(|key| {
            let path = backend.name_of(&key);
            let parsed = backend
                .get(&key, MAX_KEY_OBJECT_LEN)
                .and_then(|b| KeyObject::parse(&b, &path))
                .and_then(|k| {
                    if key[KEYS.len()..] == k.id {
                        Ok(k)
                    } else {
                        Err(Error::corrupt(
                            &path,
                            0,
                            format!("holds key {:?}, not its name", k.id),
                        ))
                    }
                })
                .map_err(Some);
            (path, parsed)
        })
        .collect())
}

/// The keys of the repository in `backend` whose config (read from `path`) is `config`:
/// `None` for a clear repository; for an encrypted one, the password from `unlock` is
/// tried on each key object, and the config's MAC checked under the master key found.
pub(crate) fn keys_for(
    backend: &dyn Backend,
    config: &Config,
    path: &Path,
    unlock: Unlock,
) -> Result<Option<Arc<Keys>>> {
    let enc = match (config.version, &config.encryption, &config.mac) {
        (crate::config::FORMAT_VERSION | crate::config::BLAKE3_FORMAT_VERSION, None, None) => {
            // A clear config beside key objects was put there: opening it as clear would
            // let the next backup write plaintext into an encrypted repository.
            if !backend.list(KEYS)?.is_empty() {
                return Err(Error::corrupt(
                    path,
                    0,
                    "the config says the repository is clear, but it has key objects (keys/): the config was replaced or is damaged",
                ));
            }
            return Ok(None);
        }
        (ENCRYPTED_FORMAT_VERSION, Some(e), Some(_)) => e,
        (v, _, _) => {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "repository format version {v} with{} an encryption object and MAC: the config is damaged",
                    if config.encryption.is_some() { "" } else { "out" }
                ),
            ))
        }
    };
    if ![AEAD_NAME, AES_GCM_NAME].contains(&enc.aead.as_str())
        || enc.kdf != super::keyfile::KDF_NAME
        || ![DIGEST_NAME, KEYED_BLAKE3_NAME].contains(&enc.digest.as_str())
        || config.digest != enc.digest
    {
        return Err(Error::refused(
            path,
            format!(
                "encryption {} / {} / {} is not the {AES_GCM_NAME} or {AEAD_NAME} / argon2id / {KEYED_BLAKE3_NAME} or {DIGEST_NAME} this diskray knows",
                enc.aead, enc.kdf, enc.digest
            ),
        ));
    }

    // The unwrapped keys, sealing and naming as the config says.
    let opened = |keys: Keys| -> Result<Option<Arc<Keys>>> {
        Ok(Some(Arc::new(configured(
            keys,
            &enc.aead,
            &enc.digest,
            path,
        )?)))
    };
    let password = match unlock()? {
        Credential::Password(p) => p,
        Credential::MasterKey(master) => {
            let keys = Keys::new(master, "");
            let want = hex(&keys.mac(&config_mac_input(config)));
            if config.mac.as_deref() != Some(want.as_str()) {
                return Err(Error::refused(
                    path,
                    "the key file's master key does not authenticate this config: it is another repository's key, or the config is damaged",
                ));
            }
            return opened(keys);
        }
    };
    let objects = read_key_objects(backend)?;
    let mut damaged = Vec::new();
    let (mut tried, mut foreign) = (0, 0);
    for (kpath, k) in &objects {
        let k = match k {
            Ok(k) if k.repository == enc.repository => k,
            Ok(_) => {
                foreign += 1;
                continue;
            }
            Err(e) => {
                damaged.push(match e {
                    Some(e) => e.to_string(),
                    None => kpath.display().to_string(),
                });
                continue;
            }
        };
        tried += 1;
        let Some(master) = k.unwrap_with(password.bytes(), kpath)? else {
            continue;
        };
        let keys = Keys::new(master, &k.id);
        let want = hex(&keys.mac(&config_mac_input(config)));
        if config.mac.as_deref() != Some(want.as_str()) {
            return Err(Error::corrupt(
                path,
                0,
                "config does not authenticate under the repository's key (MAC differs): the config is damaged",
            ));
        }
        return opened(keys);
    }
    if tried == 0 && foreign > 0 {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "no key object names repository {:?} ({foreign} name another): the config is damaged",
                enc.repository
            ),
        ));
    }
    if !damaged.is_empty() {
        return Err(Error::corrupt(
            &backend.name_of(KEYS),
            0,
            format!(
                "the password opens none of the {tried} readable keys, and {} key object(s) are damaged: {}",
                damaged.len(),
                damaged.join("; ")
            ),
        ));
    }
    if tried == 0 {
        return Err(Error::refused(
            &backend.location(),
            "the repository has no password (it was made with a key file, or its keys were removed behind diskray's back): open it with --key-file",
        ));
    }
    Err(Error::refused(
        &backend.location(),
        format!("wrong password: it opens none of the repository's {tried} key(s)"),
    ))
}

/// `keys` sealing with `aead` and naming chunks by `digest`, or why not (an AEAD or a
/// digest this build does not know).
fn configured(keys: Keys, aead: &str, digest: &str, config: &Path) -> Result<Keys> {
    let keys = keys.sealing(aead).ok_or_else(|| {
        Error::refused(
            config,
            format!("AEAD {aead:?} is not one this diskray knows"),
        )
    })?;
    keys.naming(digest).ok_or_else(|| {
        Error::refused(
            config,
            format!("chunk digest {digest:?} is not one this diskray knows"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Digest;
    use crate::crypto::{KdfChoice, Password};

    /// An encrypted repository made before keyed BLAKE3 names and AES-256-GCM
    /// (`hmac-sha256` and `xchacha20poly1305` in its config, authenticated as such) still
    /// opens, names chunks by HMAC-SHA-256 and seals with XChaCha20-Poly1305; one made now
    /// names them by keyed BLAKE3 and seals with AES-256-GCM; a config that claims another digest than its
    /// encryption object is refused.
    #[test]
    fn older_repositories_still_open_and_name_chunks_by_hmac_and_seal_with_xchacha() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        let pw = || Password::new(b"pw".to_vec());
        let fast = KdfChoice {
            memory_mib: 1,
            iterations: 1,
        };
        let repo = Repo::init(&root, 64 << 10, Some((&pw(), fast))).unwrap();
        let data = vec![9u8; 4096];
        let keys = repo.keys().unwrap().clone();
        assert_eq!(repo.config().digest, KEYED_BLAKE3_NAME);
        assert_ne!(repo.chunk_digest(&data), Digest(keys.mac(&data)));
        // Rewritten as an older diskray wrote it, its MAC recomputed under the key.
        assert_eq!(
            repo.config().encryption.as_ref().unwrap().aead,
            AES_GCM_NAME
        );
        let mut config = repo.config().clone();
        config.digest = DIGEST_NAME.into();
        if let Some(e) = config.encryption.as_mut() {
            e.digest = DIGEST_NAME.into();
            e.aead = AEAD_NAME.into();
        }
        config.mac = Some(hex(&keys.mac(&config_mac_input(&config))));
        let write = |c: &Config| {
            std::fs::write(root.join("config"), serde_json::to_vec_pretty(c).unwrap()).unwrap()
        };
        write(&config);
        let unlock = || -> Result<Credential> { Ok(pw().into()) };
        let old = Repo::open_with(&root, &unlock).unwrap();
        assert_eq!(old.chunk_digest(&data), Digest(keys.mac(&data)));
        // It seals with XChaCha20-Poly1305, as it did.
        let chacha = Keys::new(keys.master().clone(), "k")
            .sealing(AEAD_NAME)
            .unwrap();
        let sealed = old.keys().unwrap().seal(&data).unwrap();
        assert_eq!(chacha.open(&sealed).unwrap(), data);
        assert!(keys.open(&sealed).is_err());
        // An AEAD this build does not know is refused by name.
        let mut unknown = config.clone();
        if let Some(e) = unknown.encryption.as_mut() {
            e.aead = "aes128gcm".into();
        }
        unknown.mac = Some(hex(&keys.mac(&config_mac_input(&unknown))));
        write(&unknown);
        let e = Repo::open_with(&root, &unlock).unwrap_err().to_string();
        assert!(e.contains("aes128gcm"), "{e}");
        // The top-level digest disagreeing with the encryption object's.
        config.digest = KEYED_BLAKE3_NAME.into();
        config.mac = Some(hex(&keys.mac(&config_mac_input(&config))));
        write(&config);
        assert!(Repo::open_with(&root, &unlock).is_err());
    }
}
