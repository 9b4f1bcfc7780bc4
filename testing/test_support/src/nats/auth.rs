//! Credentials for NATS auth and TLS tests, made fresh in a temp dir so no
//! key or certificate is checked in: a CA with server and client
//! certificates (openssl CLI), NKey users, and operator/account/user JWTs
//! with `.creds` files for nats-server in operator mode.

use crate::process::require_binary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A test CA and the certificates it signed, all PEM files in one dir.
pub struct Certificates {
    pub ca: PathBuf,
    /// For `127.0.0.1` (IP subjectAltName), the only address tests dial.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    /// Generates them under `dir/tls`; P-256 keys keep it fast.
    pub fn generate(dir: &Path) -> Self {
        let dir = dir.join("tls");
        std::fs::create_dir_all(&dir).expect("tls dir");
        let ca = dir.join("ca.pem");
        let ca_key = dir.join("ca-key.pem");
        new_key(
            &[
                "-x509",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            "/CN=iggy test CA",
            &ca_key,
            &ca,
        );
        let (server_cert, server_key) = leaf(
            &dir,
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            &ca,
            &ca_key,
            1,
        );
        let (client_cert, client_key) = leaf(
            &dir,
            "client",
            "extendedKeyUsage=clientAuth\n",
            &ca,
            &ca_key,
            2,
        );
        Self {
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    /// nats-server flags for TLS; `mutual` also requires a client
    /// certificate signed by the CA.
    pub fn server_args(&self, mutual: bool) -> Vec<String> {
        let mut args = vec![
            "--tls".to_string(),
            "--tlscert".to_string(),
            self.server_cert.display().to_string(),
            "--tlskey".to_string(),
            self.server_key.display().to_string(),
        ];
        if mutual {
            args.extend([
                "--tlsverify".to_string(),
                "--tlscacert".to_string(),
                self.ca.display().to_string(),
            ]);
        }
        args
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn openssl(args: &[&str]) {
    let binary = require_binary(
        "openssl",
        &["/usr/bin/openssl", "/usr/local/bin/openssl"],
        "install the openssl CLI",
    );
    let output = Command::new(binary)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh P-256 key in `key` and, per `options`, a signing request or a
/// self-signed certificate for it in `out`.
fn new_key(options: &[&str], subject: &str, key: &Path, out: &Path) {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        path_str(key),
        "-out",
        path_str(out),
    ];
    args.extend_from_slice(options);
    openssl(&args);
}

/// A key and a certificate for it signed by the CA, with `extensions`.
fn leaf(
    dir: &Path,
    name: &str,
    extensions: &str,
    ca: &Path,
    ca_key: &Path,
    serial: u32,
) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}-key.pem"));
    let request = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.pem"));
    let extfile = dir.join(format!("{name}.ext"));
    std::fs::write(
        &extfile,
        format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
    )
    .expect("extensions file");
    new_key(&[], &format!("/CN=iggy test {name}"), &key, &request);
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&request),
        "-CA",
        path_str(ca),
        "-CAkey",
        path_str(ca_key),
        "-set_serial",
        &serial.to_string(),
        "-days",
        "2",
        "-extfile",
        path_str(&extfile),
        "-out",
        path_str(&cert),
    ]);
    (cert, key)
}

/// The `authorization` block admitting exactly these NKey users.
pub fn nkey_users_config(public_keys: &[&str]) -> String {
    let users: Vec<String> = public_keys
        .iter()
        .map(|key| format!("{{ nkey: \"{key}\" }}"))
        .collect();
    format!("authorization {{ users = [ {} ] }}", users.join(", "))
}

/// An operator for decentralized auth; it signs accounts.
pub struct Operator {
    key: KeyPair,
    jwt: String,
    /// nats-server will not start JetStream in operator mode without one.
    system: Account,
}

/// An account signed by an operator; it signs users.
pub struct Account {
    key: KeyPair,
    jwt: String,
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

impl Operator {
    pub fn new() -> Self {
        let key = KeyPair::new_operator();
        let jwt = encode_jwt(
            &key,
            &key.public_key(),
            "iggy-test-operator",
            serde_json::json!({"type": "operator", "version": 2}),
        );
        let system = signed_account(&key, "SYS", false);
        Self { key, jwt, system }
    }

    /// A new account signed by this operator, with JetStream and no limits.
    pub fn account(&self, name: &str) -> Account {
        signed_account(&self.key, name, true)
    }

    /// Server settings trusting this operator, with its system account and
    /// `accounts` preloaded into a memory resolver (no account server needed).
    pub fn server_config(&self, accounts: &[&Account]) -> String {
        let preload: Vec<String> = std::iter::once(&self.system)
            .chain(accounts.iter().copied())
            .map(|a| format!("  {}: \"{}\"", a.key.public_key(), a.jwt))
            .collect();
        format!(
            "operator: \"{}\"\nsystem_account: \"{}\"\nresolver: MEMORY\n\
             resolver_preload: {{\n{}\n}}",
            self.jwt,
            self.system.key.public_key(),
            preload.join("\n")
        )
    }
}

fn signed_account(operator: &KeyPair, name: &str, jetstream: bool) -> Account {
    let key = KeyPair::new_account();
    // -1 is "unlimited"; non-zero storage limits are what turn JetStream on
    // for an account in operator mode (the system account must not have it).
    let storage = if jetstream { -1 } else { 0 };
    let jwt = encode_jwt(
        operator,
        &key.public_key(),
        name,
        serde_json::json!({
            "limits": {
                "subs": -1, "data": -1, "payload": -1, "imports": -1,
                "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
                "mem_storage": storage, "disk_storage": storage,
                "streams": storage, "consumer": storage
            },
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2
        }),
    );
    Account { key, jwt }
}

impl Account {
    /// A new user of this account, as the text of a `.creds` file.
    pub fn user_creds(&self, name: &str) -> String {
        let user = KeyPair::new_user();
        let jwt = encode_jwt(
            &self.key,
            &user.public_key(),
            name,
            serde_json::json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2
            }),
        );
        let seed = user.seed().expect("a generated key has a seed");
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        )
    }
}

/// The seed in a `.creds` file's text, to check it never shows in errors.
pub fn creds_seed(creds: &str) -> &str {
    creds
        .lines()
        .find(|line| line.starts_with("SU"))
        .expect("a .creds file holds a user seed")
}

/// A JWT as nats-server reads it: ed25519-nkey, signed by `issuer` over
/// `header.claims`, both base64url without padding.
fn encode_jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let header = serde_json::json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = serde_json::json!({
        // The server only needs it unique; nsc derives it from a hash.
        "jti": format!("{subject}{}", now.as_nanos()),
        "iat": now.as_secs(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer
        .sign(signing_input.as_bytes())
        .expect("an issuer with a seed signs");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
