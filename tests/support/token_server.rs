//! A token server for the registry's bearer-token flow (distribution's
//! `auth: token`, the protocol of Docker Hub, GHCR and Harbor), on a free
//! loopback port, stopped when dropped.
//!
//! It does what a real one does: takes `GET /token?service=S&scope=
//! repository:NAME:ACTIONS` with HTTP basic credentials, checks the user
//! and password, and answers a JWT (ES256, signed with a P-256 key made
//! here, whose self-signed certificate rides in the `x5c` header and is the
//! registry's `rootcertbundle`) granting the requested actions the user
//! holds. Wrong credentials get 401 and a JSON `details`, as Docker Hub's
//! token server answers.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::json;

/// The `issuer` of tests/registry/token.yml.
pub const ISSUER: &str = "egate-tests-token-server";

/// A user: name, password, the actions (`pull`, `push`) it may be granted.
pub type User = (&'static str, &'static str, &'static [&'static str]);

/// One token request, as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The basic-auth user, if any.
    pub user: Option<String>,
    /// The `scope` parameters.
    pub scopes: Vec<String>,
    /// Whether a token was issued.
    pub issued: bool,
}

pub struct TokenServer {
    pub port: u16,
    /// PEM certificate of the signing key: the registry's rootcertbundle.
    pub certificate_pem: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Issuer {
    key: p256::ecdsa::SigningKey,
    certificate_der: Vec<u8>,
    users: Vec<User>,
}

impl TokenServer {
    pub fn start(users: &[User]) -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec![ISSUER.to_string()]).expect("rcgen makes a certificate");
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&certified.signing_key.serialize_der())
            .expect("rcgen's default key is P-256");
        let issuer = Issuer { key, certificate_der: certified.cert.der().to_vec(), users: users.to_vec() };
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        issuer.answer(stream, &requests);
                    }
                }
            })
        };
        Self { port, certificate_pem: certified.cert.pem(), requests, stop, thread: Some(thread) }
    }

    /// The URL the registry's challenge names.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Issuer {
    fn answer(&self, stream: TcpStream, requests: &Mutex<Vec<TokenRequest>>) {
        // A client that stalls must not hang the test: it gets no answer.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut authorization = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.trim().is_empty() => break,
                Ok(_) => {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(value.trim().to_string());
                    }
                }
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| (percent_decode(name), percent_decode(value)))
            .collect();
        let param =
            |name: &str| -> Vec<String> { params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect() };
        let credentials = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
        let scopes: Vec<String> = param("scope").iter().flat_map(|s| s.split(' ').map(String::from)).collect();
        let mut seen = TokenRequest { user: credentials.as_ref().map(|(u, _)| u.clone()), scopes, issued: false };

        let (status, body) = if path != "/token" {
            ("404 Not Found", json!({"details": format!("no {path} here: the token endpoint is /token")}))
        } else {
            match credentials {
                None => ("401 Unauthorized", json!({"details": "authentication required"})),
                Some((user, password)) => match self.users.iter().find(|(u, _, _)| *u == user) {
                    Some((_, expected, actions)) if *expected == password => {
                        seen.issued = true;
                        let service = param("service").pop().unwrap_or_default();
                        (
                            "200 OK",
                            json!({"token": self.token(&user, &service, &seen.scopes, actions), "expires_in": 300}),
                        )
                    }
                    _ => ("401 Unauthorized", json!({"details": "incorrect username or password"})),
                },
            }
        };
        requests.lock().unwrap().push(seen);
        let body = body.to_string();
        let mut stream = &stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    /// A JWT granting `user` the actions of `scopes` it holds.
    fn token(&self, user: &str, service: &str, scopes: &[String], held: &[&str]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let granted: Vec<&str> = actions.split(',').filter(|a| held.contains(a)).collect();
                Some(json!({"type": kind, "name": name, "actions": granted}))
            })
            .collect();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.certificate_der)],
        });
        let claims = json!({
            "iss": ISSUER, "sub": user, "aud": service,
            "iat": now, "nbf": now - 10, "exp": now + 300, "jti": format!("{user}-{now}"),
            "access": access,
        });
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature: p256::ecdsa::Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature.to_bytes()))
    }
}

/// `%XX` and `+` of a query component.
fn percent_decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(decoded) => out.push(decoded),
                    None => out.extend([b'%'].iter().chain(&hex)),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
