//! The Kubernetes API for `egate grant`: a client from the kubeconfig
//! (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`; `--context`,
//! else its current context), like kubectl's, and what the API server's
//! answers mean for the person who ran the command ([`explain`]).

use std::path::PathBuf;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use kube::{Client, Config};

/// Which cluster, as kubectl's flags of the same names say it.
#[derive(Args, Clone, Debug, Default)]
pub struct KubeArgs {
    /// The kubeconfig file to use, instead of $KUBECONFIG or ~/.kube/config.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use, instead of its current-context.
    #[arg(long, global = true, value_name = "NAME", help_heading = "Cluster")]
    pub context: Option<String>,
}

/// A client of the cluster, and what the kubeconfig said of it.
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// The API server's URL, for messages.
    pub server: String,
    /// The context's namespace, else `default`.
    pub namespace: String,
}

/// Why a command against the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig cannot be read, or names no usable context.
    #[error("cannot use the kubeconfig: {0}: check --kubeconfig, KUBECONFIG or ~/.kube/config, and --context")]
    Kubeconfig(String),
    /// The API server did not answer (or not in TLS and HTTP we accept).
    #[error(
        "cannot reach the Kubernetes API server at {server}: {cause}: check that it is up, and the cluster of \
         your kubeconfig context (--kubeconfig, KUBECONFIG, --context)"
    )]
    Unreachable {
        /// Its URL.
        server: String,
        /// What went wrong, cause after cause.
        cause: String,
    },
    /// The credentials of the kubeconfig could not be obtained.
    #[error("cannot get credentials for {server}: {cause}: check the user of your kubeconfig context")]
    Credentials {
        /// The API server's URL.
        server: String,
        /// What went wrong.
        cause: String,
    },
    /// The API server answered, refusing: the message is for the person.
    #[error("{0}")]
    Refused(String),
}

impl ClusterError {
    /// The exit code: 1 when the cluster refused, 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClusterError::Refused(_) => 1,
            _ => 2,
        }
    }
}

/// The client config the flags (else the environment) name.
pub async fn config(args: &KubeArgs) -> Result<Config, ClusterError> {
    let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Kubeconfig(format!("{}: {}", path.display(), causes(&e))))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| ClusterError::Kubeconfig(causes(&e)))
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await.map_err(|e| ClusterError::Kubeconfig(causes(&e))),
        // Neither: the kubeconfig, else the pod's service account, as kubectl does.
        (None, None) => Config::infer().await.map_err(|e| ClusterError::Kubeconfig(causes(&e))),
    }?;
    Ok(config)
}

/// A client of the cluster the flags name.
pub async fn connect(args: &KubeArgs) -> Result<Cluster, ClusterError> {
    let config = config(args).await?;
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| ClusterError::Kubeconfig(causes(&e)))?;
    Ok(Cluster { client, server, namespace })
}

/// What a command was doing when the API server answered.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// `create`, `list` or `delete`.
    pub verb: &'a str,
    /// The namespace; `None`: all of them.
    pub namespace: Option<&'a str>,
    /// The grant's name, when it has one.
    pub name: Option<&'a str>,
    /// How egate was invoked: `egate` or `kubectl egate`.
    pub program: &'a str,
}

impl Cluster {
    /// The error of a call the API server did not answer with success.
    pub fn failure(&self, error: kube::Error, action: &Action) -> ClusterError {
        match error {
            kube::Error::Api(status) => ClusterError::Refused(explain(&status, action)),
            kube::Error::Auth(error) => {
                ClusterError::Credentials { server: self.server.clone(), cause: causes(&error) }
            }
            error => ClusterError::Unreachable { server: self.server.clone(), cause: causes(&error) },
        }
    }
}

/// The API server's refusal, said as the person needs it: what they may
/// not do and whom to ask, which grant does not exist and how to see those
/// that do, what to install; a webhook's denial as the webhook wrote it.
pub fn explain(status: &Status, action: &Action) -> String {
    let message = status.message.as_str();
    let namespace = action.namespace.unwrap_or("all namespaces");
    let grant = format!("DebugGrant {namespace}/{}", action.name.unwrap_or("?"));
    let details = status.details.as_ref();
    let kind = details.map_or("", |d| d.kind.as_str());
    let named = details.is_some_and(|d| !d.name.is_empty());
    if message.contains("admission webhook") || message.contains("ValidatingAdmissionPolicy") {
        return message.to_string();
    }
    match status.code {
        401 => format!(
            "the API server did not accept your credentials ({}): they may have expired: log in again, or check \
             the user of your kubeconfig context",
            if message.is_empty() { status.reason.as_str() } else { message }
        ),
        403 if message.contains(" is forbidden: User \"") => {
            let user = message.split(" is forbidden: User \"").nth(1).and_then(|rest| rest.split('"').next());
            let you = user.map_or("you".to_string(), |u| format!("you ({u})"));
            let place = match action.namespace {
                Some(namespace) => format!("in namespace {namespace}"),
                None => "in all namespaces (-A; -n NAMESPACE asks for one)".to_string(),
            };
            let advice = match action.verb {
                "create" => "ask for the egate-grant-approver role (docs/grants.md)",
                "delete" => "revoking a grant takes the egate-grant-approver role (docs/grants.md)",
                _ => "ask for the egate-grant-viewer role (docs/grants.md)",
            };
            format!("{you} may not {} debuggrants {place}: {advice}", action.verb)
        }
        404 if kind == "namespaces" => {
            format!("there is no namespace {namespace} (kubectl get namespaces lists them): check -n")
        }
        404 if named && kind == "debuggrants" => {
            format!("no {grant} ({} grant list -n {namespace} shows the live ones)", action.program)
        }
        404 => format!(
            "the API server does not know DebugGrants (egate.dev/v1; it said {message:?}): install egate's CRDs: \
             {} crds | kubectl apply -f -",
            action.program
        ),
        409 if status.reason == "AlreadyExists" => format!(
            "{grant} already exists, and a grant cannot change: revoke it first ({} grant revoke {} -n {namespace}) \
             or choose another --name",
            action.program,
            action.name.unwrap_or("NAME")
        ),
        _ if message.is_empty() => {
            format!("the API server refused to {} it: {} {}", action.verb, status.code, status.reason)
        }
        _ => message.to_string(),
    }
}

/// An error and its causes, `: `-separated, each once.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Status as the API server sends it.
    fn status(value: serde_json::Value) -> Status {
        serde_json::from_value(value).unwrap()
    }

    const CREATE: Action = Action { verb: "create", namespace: Some("shop"), name: None, program: "egate" };

    #[test]
    fn forbidden_says_who_may_not_do_what_and_which_role_to_ask_for() {
        let forbidden = status(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "debuggrants.egate.dev is forbidden: User \"bob\" cannot create resource \"debuggrants\" in API group \"egate.dev\" in the namespace \"shop\"",
            "details": {"group": "egate.dev", "kind": "debuggrants"}
        }));
        assert_eq!(
            explain(&forbidden, &CREATE),
            "you (bob) may not create debuggrants in namespace shop: ask for the egate-grant-approver role (docs/grants.md)"
        );
        let list = Action { verb: "list", namespace: None, ..CREATE };
        assert!(explain(&forbidden, &list).starts_with(
            "you (bob) may not list debuggrants in all namespaces (-A; -n NAMESPACE asks for one): ask for"
        ));
    }

    #[test]
    fn a_webhook_denial_is_its_own_message() {
        let message = "admission webhook \"validate-grants.egate.dev\" denied the request: DebugGrant shop/x: \"alice\" \
                       cannot approve a grant they could use themselves";
        let denied =
            status(serde_json::json!({"status": "Failure", "reason": "Forbidden", "code": 403, "message": message}));
        assert_eq!(explain(&denied, &CREATE), message);
    }

    #[test]
    fn not_found_tells_a_missing_grant_from_a_missing_namespace_and_missing_crds() {
        let delete = Action { verb: "delete", name: Some("alice-web"), program: "kubectl egate", ..CREATE };
        let grant = status(serde_json::json!({
            "status": "Failure", "reason": "NotFound", "code": 404, "message": "debuggrants.egate.dev \"alice-web\" not found",
            "details": {"name": "alice-web", "group": "egate.dev", "kind": "debuggrants"}
        }));
        assert_eq!(
            explain(&grant, &delete),
            "no DebugGrant shop/alice-web (kubectl egate grant list -n shop shows the live ones)"
        );
        let namespace = status(serde_json::json!({
            "status": "Failure", "reason": "NotFound", "code": 404, "message": "namespaces \"shop\" not found",
            "details": {"name": "shop", "kind": "namespaces"}
        }));
        assert!(explain(&namespace, &CREATE).starts_with("there is no namespace shop"));
        let crd = status(serde_json::json!({
            "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource",
            "details": {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}
        }));
        assert!(explain(&crd, &delete).ends_with("install egate's CRDs: kubectl egate crds | kubectl apply -f -"));
    }

    #[test]
    fn conflicts_and_expired_credentials_say_what_to_do() {
        let create = Action { name: Some("alice-web"), ..CREATE };
        let exists = status(serde_json::json!({
            "status": "Failure", "reason": "AlreadyExists", "code": 409,
            "message": "debuggrants.egate.dev \"alice-web\" already exists",
            "details": {"name": "alice-web", "group": "egate.dev", "kind": "debuggrants"}
        }));
        assert!(explain(&exists, &create).contains("revoke it first (egate grant revoke alice-web -n shop)"));
        let expired = status(
            serde_json::json!({"status": "Failure", "reason": "Unauthorized", "code": 401, "message": "Unauthorized"}),
        );
        assert!(
            explain(&expired, &create)
                .starts_with("the API server did not accept your credentials (Unauthorized): they may have expired")
        );
        let invalid = status(
            serde_json::json!({"reason": "Invalid", "code": 422, "message": "DebugGrant.egate.dev \"A\" is invalid"}),
        );
        assert_eq!(explain(&invalid, &create), "DebugGrant.egate.dev \"A\" is invalid");
    }

    #[test]
    fn causes_are_listed_once_each() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let outer = kube::Error::ReadEvents(inner);
        assert_eq!(causes(&outer), "Error reading events stream: Connection refused (os error 111)");
    }
}
