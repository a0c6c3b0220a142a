//! Built-in policy `grants` (`builtin:grants`): in the namespaces it
//! covers, `kubectl debug` adds a container only under a live, approved
//! `DebugGrant` for that user, pod, target, image and profile.
//!
//! The policy never reads the cluster: it declares the `debugGrants` input
//! and the host hands it, with each request, the live grants of the
//! request's namespace that select the pod (docs/grants.md). For each new
//! ephemeral container it looks for a grant that matches all of:
//!
//! - the user, or one of their groups, is a subject;
//! - the container's `--target` is one of `targetContainers` (or it has none);
//! - its image matches one of `images` (as written, or normalised:
//!   `busybox:1.36` is also `docker.io/library/busybox:1.36`);
//! - its securityContext (with what it inherits from the pod) is no broader
//!   than the grant's `profile`, judged with Pod Security's own checks.
//!
//! Admitted: an audit annotation names the grant and its approver, and the
//! decision reports the use, which egate records in the grant's status.
//! Denied: the message says what each grant lacked, and gives the `egate
//! grant request` command that would ask for a matching one. Members of
//! `breakGlassGroups` are admitted without a grant, with a warning and a
//! `break-glass` audit annotation.

use egate_guest::inputs::{GrantInput, Profile};
use egate_guest::pod::ContainerView;
use egate_guest::{Decision, Error, Glob, Request, Settings};
use egate_policy_pod_security::subject::{self, Subject};
use egate_policy_pod_security::{LATEST_MINOR, Level, checks, view};
use serde::Deserialize;

egate_guest::declare_inputs!("debugGrants");

/// Settings of `grants`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantSettings {
    /// Namespaces (globs) where debugging needs a grant; empty (the
    /// default): every namespace.
    pub namespaces: Vec<Glob>,
    /// Members of these groups may debug without a grant (audited).
    pub break_glass_groups: Vec<String>,
}

impl Settings for GrantSettings {
    fn validate(&self) -> Result<(), String> {
        if self.namespaces.iter().any(|g| g.as_str().trim().is_empty()) {
            return Err("namespaces holds an empty glob: write a namespace or a glob such as \"prod-*\"".into());
        }
        if self.break_glass_groups.iter().any(|g| g.trim().is_empty()) {
            return Err("breakGlassGroups holds an empty group name: write a group such as sre-oncall".into());
        }
        Ok(())
    }
}

/// Judges a request that adds ephemeral containers.
pub fn evaluate(request: &Request, settings: &GrantSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let new: Vec<&ContainerView> = pods.new_ephemeral_containers().collect();
    let namespace = request.namespace.as_deref().unwrap_or_default();
    if new.is_empty() || !(settings.namespaces.is_empty() || settings.namespaces.iter().any(|g| g.matches(namespace))) {
        return Ok(Decision::allow());
    }
    let pod = request.name.as_deref().unwrap_or_default();
    let user = &request.user_info;
    if let Some(group) = settings.break_glass_groups.iter().find(|g| user.in_group(g)) {
        let names: Vec<String> = new.iter().map(|c| format!("{:?}", c.name)).collect();
        let note = format!(
            "user {:?} used break-glass group {group:?} to add ephemeral container {} to pod {namespace}/{pod} \
             without a DebugGrant",
            user.username,
            names.join(", ")
        );
        return Ok(Decision::allow()
            .with_warning(format!("{note}; this debug session is audited"))
            .with_audit_annotation("break-glass", note));
    }
    let grants = request.debug_grants()?;
    let needs = profiles_needed(request)?;
    let mut decision = Decision::allow();
    let mut refusals = Vec::new();
    for container in new {
        let asks = Asks::of(container, &needs)?;
        match grants.iter().find(|g| asks.misses(g, request).is_empty()) {
            Some(grant) => {
                decision = decision
                    .with_audit_annotation(
                        format!("grant.{}", container.name),
                        format!("{}/{} approved by {}", namespace, grant.name, grant.approved_by),
                    )
                    .with_grant_use(&grant.name, container.name.as_ref());
            }
            None => refusals.push(refusal(&asks, &grants, request, namespace, pod)),
        }
    }
    if refusals.is_empty() { Ok(decision) } else { Ok(Decision::deny(refusals.join("\n"))) }
}

/// What one new debug container asks for.
struct Asks<'c> {
    container: &'c str,
    image: String,
    normalized: String,
    target: Option<&'c str>,
    /// The narrowest profile that covers its securityContext.
    profile: Profile,
    /// What it asks for beyond each profile, as Pod Security lists it.
    beyond: &'c [(Profile, String)],
}

impl<'c> Asks<'c> {
    fn of(container: &'c ContainerView, needs: &'c [Need]) -> Result<Self, Error> {
        let image = container.image.as_deref().unwrap_or_default().to_string();
        let normalized = container.image_ref().map(|i| i.normalized()).unwrap_or_else(|_| image.clone());
        let need = needs.iter().find(|n| n.container == container.name).ok_or_else(|| {
            Error::new(format!("ephemeral container {:?} is missing from the pod's new containers", container.name))
        })?;
        Ok(Self {
            container: container.name.as_ref(),
            image,
            normalized,
            target: container.target_container_name.as_deref(),
            profile: need.profile,
            beyond: &need.beyond,
        })
    }

    /// What `grant` lacks for this container and user; empty: it covers it.
    fn misses(&self, grant: &GrantInput, request: &Request) -> Vec<String> {
        let user = &request.user_info;
        let mut misses = Vec::new();
        if !grant.subjects.include(&user.username, &user.groups) {
            misses.push(format!("it is not for user {:?} nor any of their groups", user.username));
        }
        if let Some(target) = self.target
            && !grant.target_containers.iter().any(|t| t == target)
        {
            misses.push(match grant.target_containers.as_slice() {
                [] => format!("it allows no --target, and the container targets {target:?}"),
                allowed => format!("--target {target:?} is not one of {allowed:?}"),
            });
        }
        if !grant
            .images
            .iter()
            .any(|i| Glob::new(i.as_str()).matches(&self.image) || Glob::new(i.as_str()).matches(&self.normalized))
        {
            misses.push(format!("image {:?} is not one of {:?}", self.image, grant.images));
        }
        if !grant.profile.covers(self.profile) {
            let why = self
                .beyond
                .iter()
                .find(|(p, _)| *p == grant.profile)
                .map(|(_, why)| why.as_str())
                .filter(|w| !w.is_empty());
            misses.push(format!(
                "the container asks for more than profile {}{}",
                grant.profile,
                why.map(|w| format!(" allows: {w}")).unwrap_or_default()
            ));
        }
        misses
    }
}

/// The denial of one container: what each grant lacked, and how to ask
/// for one that would do.
fn refusal(asks: &Asks, grants: &[GrantInput], request: &Request, namespace: &str, pod: &str) -> String {
    let user = &request.user_info.username;
    let mut lines = vec![format!(
        "no live DebugGrant lets {user:?} add ephemeral container {:?} (image {:?}{}, profile {}) to pod {namespace}/{pod}{}",
        asks.container,
        asks.image,
        asks.target.map(|t| format!(", --target {t:?}")).unwrap_or_default(),
        asks.profile,
        if grants.is_empty() { ": there is none for this pod" } else { ":" }
    )];
    for grant in grants {
        lines.push(format!(
            "  grant {:?} (approved by {}, until {}): {}",
            grant.name,
            grant.approved_by,
            grant.expires_at,
            asks.misses(grant, request).join("; ")
        ));
    }
    let target = asks.target.map(|t| format!(" --target {t}")).unwrap_or_default();
    lines.push(format!(
        "to ask for one: egate grant request {pod} -n {namespace} --user {user} --image {}{target} --profile {} \
         --duration 30m --reason \"...\", and have an approver run egate grant approve with it",
        asks.image, asks.profile
    ));
    lines.join("\n")
}

/// The narrowest profile each new container fits.
struct Need {
    container: String,
    profile: Profile,
    /// What it asks for beyond each profile (empty where it fits).
    beyond: Vec<(Profile, String)>,
}

/// Judges each new ephemeral container (with the securityContext it
/// inherits from the pod) against each profile, narrowest first, with Pod
/// Security's container checks at the newest version.
fn profiles_needed(request: &Request) -> Result<Vec<Need>, Error> {
    let Subject::NewEphemeralContainers(pod) = subject::of(request)? else { return Ok(Vec::new()) };
    let mut needs = Vec::new();
    for container in &pod.spec.ephemeral_containers {
        let beyond: Vec<(Profile, String)> =
            Profile::ALL.into_iter().map(|p| (p, profile_violations(&pod, container, p))).collect();
        let profile = beyond.iter().find(|(_, why)| why.is_empty()).map_or(Profile::Sysadmin, |(p, _)| *p);
        needs.push(Need { container: container.name.to_string(), profile, beyond });
    }
    Ok(needs)
}

/// What `container` asks for beyond `profile`, as Pod Security lists it;
/// empty when the profile covers it.
fn profile_violations(pod: &view::Pod, container: &view::Container, profile: Profile) -> String {
    let level = match profile {
        Profile::Sysadmin => return String::new(),
        Profile::Restricted => Level::Restricted,
        Profile::Baseline | Profile::General | Profile::Netadmin => Level::Baseline,
    };
    let mut alone = view::Pod {
        metadata: pod.metadata.clone(),
        spec: view::PodSpec { ephemeral_containers: vec![container.clone()], ..pod.spec.clone() },
    };
    let extra = profile.extra_capabilities();
    for caps in
        alone.spec.ephemeral_containers.iter_mut().filter_map(|c| c.security_context.as_mut()?.capabilities.as_mut())
    {
        caps.add.retain(|cap| !extra.contains(&cap.0.as_ref()));
    }
    let violations = checks::run(&alone, level, LATEST_MINOR, true);
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

egate_guest::policy!(evaluate);

#[cfg(test)]
mod tests;
