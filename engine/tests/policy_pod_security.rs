//! The built-in policy `pod-security` through its real wasm module (built by
//! scripts/build-guests.sh and embedded by build.rs): pod CREATEs at both
//! levels, and `kubectl debug` requests judged by what the new container
//! inherits from the pod; then Kubernetes' own Pod Security Admission
//! fixtures, each at its policy version, as a pod CREATE and again as
//! `kubectl debug` requests adding containers shaped like the fixture's.

mod support;

use std::path::{Path, PathBuf};

use egate_engine::PolicySet;
use serde_json::{Value, json};
use support::{debug_review_of, denial, load_manifests, manifest, review, sandbox, web_pod};

/// `builtin:pod-security` at `level`, named `pod-security`, matching what the
/// shipped manifest matches.
fn pod_security(level: &str) -> PolicySet {
    let mut manifest = manifest("pod-security", json!({"level": level}));
    manifest["metadata"]["name"] = json!("pod-security");
    manifest["spec"]["match"] =
        json!({"resources": ["pods", "pods/ephemeralcontainers"], "operations": ["CREATE", "UPDATE"]});
    load_manifests(&[manifest]).unwrap()
}

/// A pod that passes the restricted level.
fn hardened_pod() -> Value {
    let mut pod = web_pod();
    pod["spec"].as_object_mut().unwrap().remove("ephemeralContainers");
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    pod
}

/// [`hardened_pod`] running, with an earlier privileged debug container
/// `old` (added before this policy was loaded).
fn running_hardened_pod() -> Value {
    let mut pod = hardened_pod();
    pod["spec"]["ephemeralContainers"] = web_pod()["spec"]["ephemeralContainers"].clone();
    pod
}

/// A pods CREATE of `pod`.
fn create(pod: &Value) -> Vec<u8> {
    review(json!({
        "uid": "c1", "operation": "CREATE", "namespace": "shop", "name": pod["metadata"]["name"],
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "alice"},
        "object": pod
    }))
}

/// What `kubectl debug --profile=restricted` adds.
fn restricted_debug_container() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

#[test]
fn the_shipped_manifest_loads_and_judges_pod_creates_at_baseline() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/pod-security/policy.yaml");
    let set = PolicySet::load(&sandbox(), &[path]).unwrap();
    assert!(set.review(&create(&hardened_pod())).unwrap().allowed);
    let mut privileged = hardened_pod();
    privileged["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    let response = set.review(&create(&privileged)).unwrap();
    assert!(denial(&response).starts_with(r#"pod-security: violates PodSecurity "baseline:v1.37": privileged"#));
    // The same manifest judges kubectl debug.
    let response =
        set.review(&debug_review_of(&running_hardened_pod(), json!({"name": "dbg", "image": "busybox"}), "alice", &[]));
    assert!(response.unwrap().allowed);
}

#[test]
fn a_restricted_pod_is_allowed_at_both_levels() {
    for level in ["baseline", "restricted"] {
        let response = pod_security(level).review(&create(&hardened_pod())).unwrap();
        assert!(response.allowed, "{level}: {response:?}");
    }
}

#[test]
fn a_privileged_pod_is_denied_at_baseline() {
    let mut pod = hardened_pod();
    pod["spec"]["hostPID"] = json!(true);
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    pod["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let response = pod_security("baseline").review(&create(&pod)).unwrap();
    assert_eq!(response.status.as_ref().unwrap().code, 403);
    assert_eq!(
        denial(&response),
        r#"pod-security: violates PodSecurity "baseline:v1.37": host namespaces (hostPID=true), hostPath volumes (volume "root"), privileged (container "app" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn a_pod_failing_only_restricted_checks() {
    // The Kubernetes default: no securityContext at all.
    let pod = json!({"metadata": {"name": "plain", "namespace": "shop"},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    assert!(pod_security("baseline").review(&create(&pod)).unwrap().allowed);
    let response = pod_security("restricted").review(&create(&pod)).unwrap();
    assert_eq!(
        denial(&response),
        [
            r#"pod-security: violates PodSecurity "restricted:v1.37": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#,
            r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"])"#,
            r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#,
            r#"seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
        ]
        .join(", ")
    );
}

#[test]
fn a_debug_container_inheriting_the_pod_run_as_non_root_is_allowed_at_restricted() {
    // runAsNonRoot and seccompProfile come from the pod; the earlier
    // privileged debug container "old" is not judged again.
    let review = debug_review_of(&running_hardened_pod(), restricted_debug_container(), "alice", &[]);
    let response = pod_security("restricted").review(&review).unwrap();
    assert!(response.allowed, "{response:?}");
}

#[test]
fn a_debug_container_with_nothing_to_inherit_is_denied_at_restricted() {
    let mut pod = running_hardened_pod();
    pod["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let review = debug_review_of(&pod, restricted_debug_container(), "alice", &[]);
    let response = pod_security("restricted").review(&review).unwrap();
    assert_eq!(
        denial(&response),
        r#"pod-security: ephemeral container "dbg" violates PodSecurity "restricted:v1.37" (with the securityContext it inherits from the pod): runAsNonRoot != true (pod or container "dbg" must set securityContext.runAsNonRoot=true)"#
    );
    // Setting it on the debug container itself is enough.
    let mut own = restricted_debug_container();
    own["securityContext"]["runAsNonRoot"] = json!(true);
    let review = debug_review_of(&pod, own, "alice", &[]);
    assert!(pod_security("restricted").review(&review).unwrap().allowed);
}

#[test]
fn a_debug_request_does_not_judge_pod_level_fields_again() {
    // A pod admitted elsewhere with host namespaces and a hostPath volume:
    // a baseline debug container is still allowed.
    let mut pod = web_pod();
    pod["spec"]["hostNetwork"] = json!(true);
    pod["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let review = debug_review_of(&pod, json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]);
    assert!(pod_security("baseline").review(&review).unwrap().allowed);
    let netadmin = json!({"name": "dbg", "image": "busybox:1.36",
                          "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}});
    let response = pod_security("baseline").review(&debug_review_of(&pod, netadmin, "alice", &[])).unwrap();
    assert!(
        denial(&response).ends_with(r#"non-default capabilities (container "dbg" must not include "NET_ADMIN" in securityContext.capabilities.add)"#),
        "{response:?}"
    );
}

#[test]
fn a_label_update_of_a_running_pod_is_allowed() {
    let mut pod = web_pod();
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let mut relabelled = pod.clone();
    relabelled["metadata"]["labels"]["tier"] = json!("web");
    let update = review(json!({
        "uid": "u1", "operation": "UPDATE", "namespace": "shop", "name": "web",
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "system:serviceaccount:kube-system:controller"},
        "object": relabelled, "oldObject": pod
    }));
    assert!(pod_security("restricted").review(&update).unwrap().allowed);
}

#[test]
fn a_level_other_than_baseline_or_restricted_is_refused_at_load() {
    let mut bad = manifest("pod-security", json!({"level": "strict"}));
    bad["metadata"]["name"] = json!("pod-security");
    let err = load_manifests(&[bad]).err().unwrap().to_string();
    assert!(err.contains(r#"policy "pod-security""#), "{err}");
    assert!(err.contains(r#""strict" is not a level: use "baseline" or "restricted""#), "{err}");
}

#[test]
fn a_version_outside_v1_0_to_v1_37_is_refused_at_load() {
    let mut bad = manifest("pod-security", json!({"level": "baseline", "version": "v1.38"}));
    bad["metadata"]["name"] = json!("pod-security");
    let err = load_manifests(&[bad]).err().unwrap().to_string();
    assert!(err.contains(r#""v1.38" is not a policy version: use one of "latest", "v1.0", "v1.1","#), "{err}");
    assert!(err.contains(r#""v1.37""#), "{err}");
}

#[test]
fn a_pinned_version_judges_with_its_checks_and_names_itself() {
    // runAsUser=0 is refused by the restricted level from v1.23 on.
    let mut root = hardened_pod();
    root["spec"]["securityContext"]["runAsUser"] = json!(0);
    let at = |version: &str| {
        let mut manifest = manifest("pod-security", json!({"level": "restricted", "version": version}));
        manifest["spec"]["match"] = json!({"resources": ["pods"], "operations": ["CREATE"]});
        load_manifests(&[manifest]).unwrap().review(&create(&root)).unwrap()
    };
    assert!(at("v1.22").allowed);
    assert_eq!(
        denial(&at("v1.23")),
        r#"test-pod-security: violates PodSecurity "restricted:v1.23": runAsUser=0 (pod must not set runAsUser=0)"#
    );
    assert!(denial(&at("latest")).contains(r#"PodSecurity "restricted:v1.37": runAsUser=0"#));
}

// ----- Kubernetes' own fixtures ------------------------------------------------

/// One of Kubernetes' own Pod Security Admission fixtures
/// (`../shared/psa-fixtures/LEVEL/v1.N/{pass,fail}/NAME.yaml`, one Pod each).
struct Fixture {
    level: &'static str,
    minor: u32,
    /// `pass/` (allowed by that level and version) or `fail/` (denied).
    pass: bool,
    /// The file's stem, named by Kubernetes after the check it exercises
    /// and a number: `hostnamespaces1`.
    name: String,
    pod: Value,
}

impl Fixture {
    fn version(&self) -> String {
        format!("v1.{}", self.minor)
    }

    fn id(&self) -> String {
        format!("{}/{}/{}/{}", self.level, self.version(), if self.pass { "pass" } else { "fail" }, self.name)
    }

    /// The check it exercises: its name without the number.
    fn check(&self) -> &str {
        self.name.trim_end_matches(|c: char| c.is_ascii_digit())
    }
}

/// Every fixture, by level, version, pass then fail, and name; `None` (and
/// one line saying so) when the folder is absent, as in a clone outside
/// this setup.
fn psa_fixtures() -> Option<Vec<Fixture>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/psa-fixtures");
    if !root.is_dir() {
        println!("psa fixtures: skipped, {} is absent", root.display());
        return None;
    }
    let files = |dir: &Path| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let mut all = Vec::new();
    for level in ["baseline", "restricted"] {
        let mut versions: Vec<(u32, PathBuf)> = files(&root.join(level))
            .into_iter()
            .filter_map(|path| Some((path.file_name()?.to_str()?.strip_prefix("v1.")?.parse().ok()?, path)))
            .collect();
        versions.sort();
        assert_eq!(versions.len(), 38, "{level}: v1.0 to v1.37");
        for (minor, dir) in versions {
            for pass in [true, false] {
                let yamls = files(&dir.join(if pass { "pass" } else { "fail" }));
                for file in yamls.into_iter().filter(|path| path.extension().is_some_and(|e| e == "yaml")) {
                    let pod: Value = egate_engine::yaml::from_str(&std::fs::read_to_string(&file).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
                    all.push(Fixture { level, minor, pass, name, pod });
                }
            }
        }
    }
    assert!(!all.is_empty(), "no fixtures under {}", root.display());
    Some(all)
}

/// `builtin:pod-security` at a fixture's level and version, named
/// `psa`, for `resource` and `operation`.
fn pod_security_at(sandbox: &egate_engine::Sandbox, fixture: &Fixture, resource: &str, operation: &str) -> PolicySet {
    let mut manifest = manifest("pod-security", json!({"level": fixture.level, "version": fixture.version()}));
    manifest["metadata"]["name"] = json!("psa");
    manifest["spec"]["match"] = json!({"resources": [resource], "operations": [operation]});
    PolicySet::from_manifests(sandbox, Path::new("psa.yaml"), &manifest.to_string()).unwrap()
}

/// The policy set of each level and version, loaded once.
struct SetsByVersion<'s> {
    sandbox: &'s egate_engine::Sandbox,
    resource: &'static str,
    operation: &'static str,
    sets: std::collections::HashMap<(&'static str, u32), PolicySet>,
}

impl<'s> SetsByVersion<'s> {
    fn new(sandbox: &'s egate_engine::Sandbox, resource: &'static str, operation: &'static str) -> Self {
        Self { sandbox, resource, operation, sets: Default::default() }
    }

    fn of(&mut self, fixture: &Fixture) -> &PolicySet {
        self.sets
            .entry((fixture.level, fixture.minor))
            .or_insert_with(|| pod_security_at(self.sandbox, fixture, self.resource, self.operation))
    }
}

/// What a response says, for a list of disagreements.
fn said(response: &egate_engine::AdmissionResponse) -> String {
    if response.allowed { "allowed".to_string() } else { denial(response).to_string() }
}

/// Every fixture judged at its level and version as a pod CREATE through
/// the real module: `pass/` must be allowed, `fail/` denied.
#[test]
fn every_psa_fixture_is_judged_as_pod_security_admission_judges_it() {
    let Some(fixtures) = psa_fixtures() else { return };
    let sandbox = sandbox();
    let mut sets = SetsByVersion::new(&sandbox, "pods", "CREATE");
    let mut disagreements = Vec::new();
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for fixture in &fixtures {
        let response = sets.of(fixture).review(&create(&fixture.pod)).unwrap();
        let count = counts.entry(fixture.level).or_default();
        count.0 += 1;
        if response.allowed == fixture.pass {
            count.1 += 1;
        } else {
            disagreements.push(format!("{}: {}", fixture.id(), said(&response)));
        }
    }
    let summary: Vec<String> =
        counts.iter().map(|(level, (judged, agreed))| format!("{level} {agreed}/{judged}")).collect();
    let total = fixtures.len();
    println!("psa fixtures: {}/{total} agree ({})", total - disagreements.len(), summary.join(", "));
    assert!(disagreements.is_empty(), "{} disagree:\n{}", disagreements.len(), disagreements.join("\n"));
}

/// What `kubectl debug` can be denied for, by the check a fail fixture
/// exercises. docs/policies.md ("Fixtures through kubectl debug") lists the
/// same table and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OnDebug {
    /// A check of container fields, or of the pod-level securityContext
    /// values a container inherits: judged on every new ephemeral
    /// container, so the debug request is denied.
    ContainerCheck,
    /// A check of pod-level fields only: `kubectl debug` cannot change
    /// them and the pod was admitted with them, so it is not run again and
    /// the debug request is allowed.
    PodLevelCheck,
    /// A check of fields an ephemeral container cannot have (`ports`,
    /// probes, `lifecycle`): the API server refuses them before admission,
    /// so the container is shaped without them and the request is allowed.
    FieldsNotOnEphemeralContainers,
    /// A container check failed only by a pod-level value that every
    /// container replaces with its own ([`POD_VALUE_REPLACED`]): a new
    /// container shaped like them does not run with it, so the request is
    /// allowed.
    PodValueReplaced,
}

use OnDebug::{ContainerCheck, FieldsNotOnEphemeralContainers, PodLevelCheck, PodValueReplaced};

/// Fail fixtures whose only bad value is the pod's
/// `securityContext.seLinuxOptions` while every container sets its own
/// `seLinuxOptions: {}`. The kubelet takes a container's seLinuxOptions
/// whole, instead of the pod's (DetermineEffectiveSecurityContext), so a
/// debug container shaped like theirs runs without the pod's value. Pod
/// Security Admission refuses such a pod for its pod-level field, which
/// `kubectl debug` cannot change. [`pod_value_replaced`] checks each has
/// that shape.
const POD_VALUE_REPLACED: [&str; 3] = ["selinuxoptions0", "selinuxoptions3", "selinuxoptions4"];

/// Whether `fixture` has the shape [`POD_VALUE_REPLACED`] says.
fn pod_value_replaced(fixture: &Fixture) -> bool {
    let spec = &fixture.pod["spec"];
    let pod_value = &spec["securityContext"]["seLinuxOptions"];
    let containers =
        ["initContainers", "containers"].into_iter().flat_map(|key| spec[key].as_array().cloned().unwrap_or_default());
    pod_value.as_object().is_some_and(|options| !options.is_empty())
        && containers.into_iter().all(|c| c["securityContext"]["seLinuxOptions"] == json!({}))
}

/// Every check Kubernetes names a fixture after, lowercased as it does.
const CHECKS_ON_DEBUG: [(&str, OnDebug); 19] = [
    ("allowprivilegeescalation", ContainerCheck),
    ("apparmorprofile", ContainerCheck),
    ("capabilities_baseline", ContainerCheck),
    ("capabilities_restricted", ContainerCheck),
    ("hostnamespaces", PodLevelCheck),
    ("hostpathvolumes", PodLevelCheck),
    ("hostports", FieldsNotOnEphemeralContainers),
    ("hostprobesandhostlifecycle", FieldsNotOnEphemeralContainers),
    ("privileged", ContainerCheck),
    ("procmount", ContainerCheck),
    ("procmount_restricted", ContainerCheck),
    ("restrictedvolumes", PodLevelCheck),
    ("runasnonroot", ContainerCheck),
    ("runasuser", ContainerCheck),
    ("seccompprofile_baseline", ContainerCheck),
    ("seccompprofile_restricted", ContainerCheck),
    ("selinuxoptions", ContainerCheck),
    ("sysctls", PodLevelCheck),
    ("windowshostprocess", ContainerCheck),
];

/// The fields an ephemeral container may have: the API server's
/// `allowedEphemeralContainerFields` (pkg/apis/core/validation), in JSON,
/// and `targetContainerName`. Ports, resources, probes, lifecycle (and
/// resizePolicy, restartPolicy) are refused there before admission.
const EPHEMERAL_CONTAINER_FIELDS: [&str; 17] = [
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "volumeMounts",
    "volumeDevices",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "targetContainerName",
];

/// The `kubectl debug` requests shaped after `fixture`: the fixture's pod
/// with its pod-level fields (securityContext, host namespaces, volumes,
/// annotations...), as if admitted before the policy, running one
/// restricted container `app`; each request adds one ephemeral container
/// shaped like one of the fixture's containers (init containers first),
/// with the same name, so annotations naming it still apply. Also
/// returns whether a container lost fields ephemeral containers cannot
/// have.
fn debug_requests(fixture: &Fixture) -> (Vec<Vec<u8>>, bool) {
    let spec = &fixture.pod["spec"];
    let of = |key: &str| spec[key].as_array().cloned().unwrap_or_default();
    let containers: Vec<Value> = of("initContainers").into_iter().chain(of("containers")).collect();
    let mut pod = fixture.pod.clone();
    pod["metadata"]["namespace"] = json!("shop");
    let app = hardened_pod()["spec"]["containers"][0].clone();
    assert!(containers.iter().all(|c| c["name"] != app["name"]), "{}: a container named app", fixture.id());
    pod["spec"]["containers"] = json!([app]);
    pod["spec"].as_object_mut().unwrap().remove("initContainers");
    let mut dropped = false;
    let requests = containers
        .into_iter()
        .map(|container| {
            let mut fields = container.as_object().unwrap().clone();
            let before = fields.len();
            fields.retain(|key, _| EPHEMERAL_CONTAINER_FIELDS.contains(&key.as_str()));
            dropped |= fields.len() < before;
            fields.insert("targetContainerName".into(), json!("app"));
            debug_review_of(&pod, Value::Object(fields), "alice", &[])
        })
        .collect();
    (requests, dropped)
}

/// Every fixture again, through `pods/ephemeralcontainers` as the
/// `kubectl debug` requests of [`debug_requests`], at its level and
/// version: a fail fixture is denied when the check it exercises is a
/// container check, and allowed when it is a pod-level check, one of
/// fields ephemeral containers cannot have ([`CHECKS_ON_DEBUG`]), or one
/// failed only by a pod-level value every container replaces
/// ([`POD_VALUE_REPLACED`]); a pass fixture is always allowed.
#[test]
fn every_psa_fixture_through_kubectl_debug_is_judged_by_what_the_new_container_is_and_inherits() {
    let Some(fixtures) = psa_fixtures() else { return };
    let sandbox = sandbox();
    let mut sets = SetsByVersion::new(&sandbox, "pods/ephemeralcontainers", "UPDATE");
    let mut wrong = Vec::new();
    let mut counts: std::collections::BTreeMap<Option<OnDebug>, usize> = Default::default();
    let mut shaped_without_fields = 0;
    for fixture in &fixtures {
        let kind = if fixture.pass {
            None
        } else {
            let found = CHECKS_ON_DEBUG.iter().find(|(check, _)| *check == fixture.check());
            let Some((_, kind)) = found else {
                panic!("{}: a check CHECKS_ON_DEBUG does not list: add it, with what kubectl debug does", fixture.id())
            };
            if POD_VALUE_REPLACED.contains(&fixture.name.as_str()) {
                assert!(pod_value_replaced(fixture), "{}: not the shape POD_VALUE_REPLACED says", fixture.id());
                Some(PodValueReplaced)
            } else {
                Some(*kind)
            }
        };
        let (requests, dropped) = debug_requests(fixture);
        shaped_without_fields += usize::from(dropped);
        let set = sets.of(fixture);
        let responses: Vec<_> = requests.iter().map(|request| set.review(request).unwrap()).collect();
        let denials: Vec<&str> = responses.iter().filter(|r| !r.allowed).map(denial).collect();
        let denied = !denials.is_empty();
        let expected = kind == Some(ContainerCheck);
        // Each denial names the one new container, the level and the version.
        let judged_as = format!(r#"" violates PodSecurity "{}:{}""#, fixture.level, fixture.version());
        let worded = denials.iter().all(|d| d.starts_with(r#"psa: ephemeral container ""#) && d.contains(&judged_as));
        if denied != expected || !worded {
            let said: Vec<String> = responses.iter().map(said).collect();
            wrong.push(format!("{} ({kind:?}): {}", fixture.id(), said.join(" | ")));
        }
        *counts.entry(kind).or_default() += 1;
    }
    let count = |kind| counts.get(&kind).copied().unwrap_or(0);
    println!(
        "psa fixtures through kubectl debug: {} of {} as expected; fail fixtures: {} denied (container checks), {} allowed (pod-level checks), {} allowed (fields ephemeral containers cannot have), {} allowed (a pod-level value every container replaces); pass fixtures: {} allowed; {} shaped without such fields",
        fixtures.len() - wrong.len(),
        fixtures.len(),
        count(Some(ContainerCheck)),
        count(Some(PodLevelCheck)),
        count(Some(FieldsNotOnEphemeralContainers)),
        count(Some(PodValueReplaced)),
        count(None),
        shaped_without_fields,
    );
    assert!(wrong.is_empty(), "{} not as expected:\n{}", wrong.len(), wrong.join("\n"));
}
