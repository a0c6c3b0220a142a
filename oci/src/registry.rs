//! Talking to registries: pull, push, resolve, signatures. Blocking calls
//! over `oci-client`, each on a thread of its own with its own runtime, so
//! they may be made from inside an async program (egate serve's reload).

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
use oci_client::{Client, RegistryOperation};

use crate::auth::Credentials;
use crate::sign::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, SignedPayload, signature_tag};
use crate::store::Store;
use crate::{ModuleRef, OciError, digest};

/// Manifest annotation: the egate guest ABI version the module speaks.
pub const ABI_ANNOTATION: &str = "dev.egate.abi.version";
/// Manifest annotation: the policy name.
pub const POLICY_ANNOTATION: &str = "dev.egate.policy.name";
/// Manifest annotation: where the module's source lives (OCI's own key).
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// A docker `config.json` with credentials; default
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    /// Registries (`HOST:PORT`) spoken to in plain HTTP, besides
    /// `localhost` and `127.0.0.1`, which always are.
    pub insecure: Vec<String>,
    /// PEM CA certificates to trust beside the system's.
    pub ca_files: Vec<PathBuf>,
    /// Where pulled modules are kept; default [`Store::default_dir`].
    pub cache_dir: Option<PathBuf>,
}

/// A module found in a registry (or the cache).
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The wasm module.
    pub wasm: Vec<u8>,
    /// `sha256:HEX` of its manifest.
    pub digest: String,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Whether it came from the cache, without a pull.
    pub cached: bool,
    /// Whether the registry was unreachable and the pinned digest was
    /// loaded from the cache instead of resolving the tag.
    pub offline: bool,
}

/// Pulls, pushes and resolves modules, with a cache by digest.
pub struct Registry {
    options: RegistryOptions,
    credentials: Credentials,
    certificates: Vec<oci_client::client::Certificate>,
    store: Option<Store>,
}

impl Registry {
    /// A registry client; reads the credentials and CA files now.
    pub fn new(options: RegistryOptions) -> Result<Self, OciError> {
        // reqwest's rustls needs a process-wide provider: egate's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let credentials = Credentials::read(options.docker_config.as_deref())?;
        let certificates = options
            .ca_files
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .map(|data| oci_client::client::Certificate {
                        encoding: oci_client::client::CertificateEncoding::Pem,
                        data,
                    })
                    .map_err(|e| OciError::File {
                        path: path.clone(),
                        message: format!("cannot read the CA certificate: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        let store = options.cache_dir.clone().or_else(Store::default_dir).map(Store::new);
        Ok(Self { options, credentials, certificates, store })
    }

    /// The digest-addressed cache.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    fn plain_http(&self, registry: &str) -> bool {
        let host = registry.rsplit_once(':').map_or(registry, |(host, _)| host);
        host == "localhost"
            || host == "127.0.0.1"
            || host == "[::1]"
            || self.options.insecure.iter().any(|r| r == registry)
    }

    fn client(&self, registry: &str) -> Client {
        let protocol = if self.plain_http(registry) { ClientProtocol::Http } else { ClientProtocol::Https };
        Client::new(ClientConfig {
            protocol,
            extra_root_certificates: self.certificates.clone(),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }

    /// Runs `work` with a client for `module`'s registry on a thread of its own.
    fn run<T: Send>(
        &self,
        module: &ModuleRef,
        work: impl AsyncFnOnce(&Client, &oci_client::secrets::RegistryAuth) -> Result<T, OciDistributionError> + Send,
        operation: RegistryOperation,
    ) -> Result<T, OciError> {
        let client = self.client(module.registry());
        let auth = self.credentials.for_registry(module.registry());
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                        OciError::Unreachable {
                            registry: module.registry().into(),
                            reference: module.text.clone(),
                            plain_http: true,
                            cause: format!("cannot start the client: {e}"),
                        }
                    })?;
                    // Asks /v2/ what auth it wants (none, basic, or a bearer
                    // token from its realm) and keeps it for the requests.
                    let work = async {
                        client.auth(&module.reference, &auth, operation).await?;
                        work(&client, &auth).await
                    };
                    runtime.block_on(work).map_err(|e| self.explain(module, operation, e))
                })
                .join()
                .expect("the registry client does not panic")
        })
    }

    /// The manifest digest a reference names: its digest, or its tag resolved.
    pub fn resolve(&self, module: &ModuleRef) -> Result<String, OciError> {
        if let Some(digest) = module.reference.digest() {
            return Ok(digest.to_string());
        }
        let reference = &module.reference;
        self.run(
            module,
            async |client, auth| client.fetch_manifest_digest(reference, auth).await,
            RegistryOperation::Pull,
        )
    }

    /// The module a reference names. `pin` is a digest the caller expects:
    /// when the registry cannot be reached to resolve a tag, a cached
    /// module of that digest is returned (marked `offline`).
    pub fn pull(&self, module: &ModuleRef, pin: Option<&str>) -> Result<Pulled, OciError> {
        let (digest, offline) = match self.resolve(module) {
            Ok(digest) => (digest, false),
            Err(OciError::Unreachable { cause, .. }) if module.reference.digest().is_none() => match pin {
                Some(pin) if self.cached(pin).is_some() => (pin.to_string(), true),
                _ => {
                    return Err(OciError::TagOffline {
                        registry: module.registry().into(),
                        reference: module.text.clone(),
                        cause,
                    });
                }
            },
            Err(error) => return Err(error),
        };
        if let Some((manifest, wasm)) = self.cached(&digest) {
            return Ok(Pulled {
                wasm,
                digest,
                annotations: manifest.annotations.unwrap_or_default(),
                cached: true,
                offline,
            });
        }
        let at = module.at(&digest);
        let (raw, _) = self.run(
            module,
            async |client, auth| client.pull_manifest_raw(&at, auth, &[OCI_IMAGE_MEDIA_TYPE]).await,
            RegistryOperation::Pull,
        )?;
        let actual = crate::digest(&raw);
        if actual != digest {
            return Err(self.corrupt(module, "the manifest", &digest, &actual));
        }
        let manifest = parse_manifest(module, &digest, &raw)?;
        let layer = wasm_layer(module, &digest, &manifest)?.clone();
        let wasm = self.run(
            module,
            async |client, _| {
                let mut out = Vec::new();
                client.pull_blob(&at, &layer, &mut out).await.map(|()| out)
            },
            RegistryOperation::Pull,
        )?;
        let actual = crate::digest(&wasm);
        if actual != layer.digest {
            return Err(self.corrupt(module, "the module layer", &layer.digest, &actual));
        }
        if let Some(store) = &self.store {
            store.put(&digest, &raw, &layer.digest, &wasm);
        }
        Ok(Pulled { wasm, digest, annotations: manifest.annotations.unwrap_or_default(), cached: false, offline })
    }

    /// The manifest and module stored for `digest`, when sound.
    fn cached(&self, digest: &str) -> Option<(OciImageManifest, Vec<u8>)> {
        let store = self.store.as_ref()?;
        let manifest: OciImageManifest = serde_json::from_slice(&store.manifest(digest)?).ok()?;
        let layer = manifest.layers.iter().find(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)?;
        let wasm = store.blob(&layer.digest)?;
        Some((manifest, wasm))
    }

    /// Pushes a module as an OCI artifact (config [`WASM_CONFIG_MEDIA_TYPE`],
    /// one layer [`WASM_LAYER_MEDIA_TYPE`]) with `annotations` on its
    /// manifest; returns the manifest digest. The same module and
    /// annotations always make the same digest.
    pub fn push(
        &self,
        module: &ModuleRef,
        wasm: &[u8],
        annotations: BTreeMap<String, String>,
    ) -> Result<String, OciError> {
        let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
        let descriptor = |media_type: &str, bytes: &[u8]| OciDescriptor {
            media_type: media_type.into(),
            digest: digest(bytes),
            size: bytes.len() as i64,
            ..OciDescriptor::default()
        };
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
            config: descriptor(WASM_CONFIG_MEDIA_TYPE, &config),
            layers: vec![descriptor(WASM_LAYER_MEDIA_TYPE, wasm)],
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..OciImageManifest::default()
        };
        let raw = serde_json::to_vec(&manifest).expect("a manifest serialises");
        let manifest_digest = digest(&raw);
        let reference = &module.reference;
        self.run(
            module,
            async |client, _| {
                client.push_blob(reference, wasm.to_vec(), &manifest.layers[0].digest).await?;
                client.push_blob(reference, config.clone(), &manifest.config.digest).await?;
                let content_type = OCI_IMAGE_MEDIA_TYPE.parse().expect("a media type is a header value");
                client.push_manifest_raw(reference, raw.clone(), content_type).await
            },
            RegistryOperation::Push,
        )?;
        Ok(manifest_digest)
    }

    /// The cosign signatures stored for `digest` (tag `sha256-HEX.sig`).
    pub fn signatures(&self, module: &ModuleRef, digest: &str) -> Result<Vec<SignedPayload>, OciError> {
        let at = module.tagged(&signature_tag(digest));
        let pulled = self.run(
            module,
            async |client, auth| {
                let (raw, _) = match client.pull_manifest_raw(&at, auth, &[OCI_IMAGE_MEDIA_TYPE]).await {
                    Ok(found) => found,
                    Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let manifest: OciImageManifest = serde_json::from_slice(&raw)?;
                let mut found = Vec::new();
                for layer in manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE) {
                    let Some(signature) = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)) else {
                        continue;
                    };
                    let mut payload = Vec::new();
                    client.pull_blob(&at, layer, &mut payload).await?;
                    found.push(SignedPayload { payload, signature: signature.clone() });
                }
                Ok(found)
            },
            RegistryOperation::Pull,
        )?;
        Ok(pulled)
    }

    /// Stores a cosign signature of `digest` (`signature`: base64 ECDSA of
    /// `payload`) under the tag `sha256-HEX.sig`, as `cosign sign` does:
    /// one simple-signing layer per signature, beside the ones already
    /// there. Returns the signature manifest's reference by tag.
    pub fn push_signature(
        &self,
        module: &ModuleRef,
        digest: &str,
        payload: &[u8],
        signature: &str,
    ) -> Result<String, OciError> {
        let tag = signature_tag(digest);
        let at = module.tagged(&tag);
        let mut annotations = BTreeMap::new();
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), signature.to_string());
        let layer = OciDescriptor {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
            digest: crate::digest(payload),
            size: payload.len() as i64,
            annotations: Some(annotations),
            ..OciDescriptor::default()
        };
        self.run(
            module,
            async |client, auth| {
                let mut layers = match client.pull_manifest_raw(&at, auth, &[OCI_IMAGE_MEDIA_TYPE]).await {
                    Ok((raw, _)) => serde_json::from_slice::<OciImageManifest>(&raw)?.layers,
                    Err(e) if is_not_found(&e) => Vec::new(),
                    Err(e) => return Err(e),
                };
                layers.retain(|l| l.digest != layer.digest || l.annotations != layer.annotations);
                layers.push(layer.clone());
                client.push_blob(&at, payload.to_vec(), &layer.digest).await?;
                // The image config cosign writes: one uncompressed layer per signature.
                let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
                let history = vec![serde_json::json!({"created": "0001-01-01T00:00:00Z"}); layers.len()];
                let config = serde_json::to_vec(&serde_json::json!({
                    "architecture": "", "os": "", "created": "0001-01-01T00:00:00Z", "config": {},
                    "history": history, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                }))?;
                let config_digest = crate::digest(&config);
                client.push_blob(&at, config.clone(), &config_digest).await?;
                let manifest = OciImageManifest {
                    schema_version: 2,
                    media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
                    config: OciDescriptor {
                        media_type: "application/vnd.oci.image.config.v1+json".into(),
                        digest: config_digest,
                        size: config.len() as i64,
                        ..OciDescriptor::default()
                    },
                    layers,
                    ..OciImageManifest::default()
                };
                let content_type = OCI_IMAGE_MEDIA_TYPE.parse().expect("a media type is a header value");
                client.push_manifest_raw(&at, serde_json::to_vec(&manifest)?, content_type).await
            },
            RegistryOperation::Push,
        )?;
        Ok(format!("oci://{}/{}:{tag}", module.registry(), module.reference.repository()))
    }

    fn corrupt(&self, module: &ModuleRef, what: &'static str, expected: &str, actual: &str) -> OciError {
        OciError::Corrupt {
            registry: module.registry().into(),
            reference: module.text.clone(),
            what,
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// The client's error as egate tells it.
    fn explain(&self, module: &ModuleRef, operation: RegistryOperation, error: OciDistributionError) -> OciError {
        let registry = module.registry().to_string();
        let reference = module.text.clone();
        let operation = match operation {
            RegistryOperation::Pull => "pull",
            RegistryOperation::Push => "push",
        };
        let user = self.credentials.user_for(&registry);
        let who = match user {
            Some(user) => format!("user {user:?}"),
            None => "anonymous: no credentials for it".to_string(),
        };
        let unauthorized = |problem: String| OciError::Unauthorized {
            registry: registry.clone(),
            reference: reference.clone(),
            operation,
            problem: format!("{problem}, as {who}"),
            config: self.credentials.source.clone(),
        };
        match error {
            OciDistributionError::RequestError(e) if e.status().is_none() => OciError::Unreachable {
                plain_http: self.plain_http(&registry),
                registry,
                reference,
                cause: error_chain(&e),
            },
            OciDistributionError::UnauthorizedError { .. } => unauthorized("HTTP 401 Unauthorized".into()),
            OciDistributionError::AuthenticationFailure(answer) => {
                unauthorized(format!("its token server refused the credentials: {}", answer.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let message = envelope.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
                match codes.first() {
                    Some(OciErrorCode::Unauthorized) => unauthorized(format!("HTTP 401 UNAUTHORIZED: {message}")),
                    Some(OciErrorCode::Denied) => unauthorized(format!("HTTP 403 DENIED: {message}")),
                    Some(
                        code @ (OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound),
                    ) => OciError::NotFound { registry, reference, code: error_code(code) },
                    code => OciError::Http {
                        registry,
                        reference,
                        status: code.map(|c| error_code(c)).unwrap_or_else(|| "an error".into()),
                        message,
                    },
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_) => {
                OciError::NotFound { registry, reference, code: "MANIFEST_UNKNOWN".into() }
            }
            OciDistributionError::ServerError { code: 401, .. } => unauthorized("HTTP 401 Unauthorized".into()),
            OciDistributionError::ServerError { code: 403, message, .. } => unauthorized(format!("HTTP 403 {message}")),
            OciDistributionError::ServerError { code: 404, .. } => {
                OciError::NotFound { registry, reference, code: "NOT_FOUND".into() }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                OciError::Http { registry, reference, status: format!("HTTP {code}"), message }
            }
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => OciError::Corrupt { registry, reference, what: "a blob", expected, actual },
            other => OciError::Http { registry, reference, status: "an error".into(), message: other.to_string() },
        }
    }
}

/// The registry's error code as the distribution spec writes it (`MANIFEST_UNKNOWN`).
fn error_code(code: &OciErrorCode) -> String {
    serde_json::to_value(code).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{code:?}"))
}

fn is_not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown))
        }
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// An error and its causes, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn parse_manifest(module: &ModuleRef, digest: &str, raw: &[u8]) -> Result<OciImageManifest, OciError> {
    serde_json::from_slice(raw).map_err(|e| OciError::NotAModule {
        reference: module.text.clone(),
        digest: digest.into(),
        reason: format!("its manifest is not an OCI image manifest ({e})"),
    })
}

fn wasm_layer<'m>(
    module: &ModuleRef,
    digest: &str,
    manifest: &'m OciImageManifest,
) -> Result<&'m OciDescriptor, OciError> {
    let mut layers = manifest.layers.iter().filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE);
    match (layers.next(), layers.next()) {
        (Some(layer), None) => Ok(layer),
        (found, _) => Err(OciError::NotAModule {
            reference: module.text.clone(),
            digest: digest.into(),
            reason: format!(
                "it has {} layers of media type {WASM_LAYER_MEDIA_TYPE}, where egate needs exactly one (its layers: {})",
                if found.is_some() { "several" } else { "no" },
                manifest.layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}
