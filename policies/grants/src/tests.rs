use egate_guest::settings_from_json;
use egate_guest::testing::{debug_request, web_pod};
use serde_json::{Value, json};

use super::*;

fn grant(name: &str, extra: Value) -> Value {
    let mut grant = json!({
        "name": name, "approvedBy": "carol", "expiresAt": "2026-12-03T11:00:00Z",
        "subjects": {"users": ["alice"]}, "targetContainers": ["app"],
        "images": ["busybox:*"], "profile": "general"
    });
    for (key, value) in extra.as_object().unwrap() {
        grant[key] = value.clone();
    }
    grant
}

/// kubectl debug's container for a profile, as kubectl 1.37 writes it.
fn debug_container(profile: &str, image: &str, target: Option<&str>) -> Value {
    let security_context = match profile {
        "restricted" => json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false,
                               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}),
        "general" => json!({"capabilities": {"add": ["SYS_PTRACE"]}}),
        "netadmin" => json!({"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}),
        "sysadmin" => json!({"privileged": true}),
        _ => Value::Null,
    };
    let mut container = json!({"name": "dbg", "image": image, "securityContext": security_context});
    if let Some(target) = target {
        container["targetContainerName"] = json!(target);
    }
    container
}

fn judge_with(grants: Value, container: Value, user: &str, groups: &[&str], settings: &str) -> Decision {
    let mut request: Value = serde_json::from_slice(&debug_request(&web_pod(), container, user, groups)).unwrap();
    request["egateInputs"] = json!({"debugGrants": grants});
    let bytes = serde_json::to_vec(&request).unwrap();
    let settings: GrantSettings = settings_from_json(settings.as_bytes()).unwrap();
    evaluate(&Request::parse(&bytes).unwrap(), &settings).unwrap()
}

fn judge(grants: Value, container: Value) -> Decision {
    judge_with(grants, container, "alice", &["sre"], "{}")
}

#[test]
fn a_matching_grant_admits_and_is_named_in_the_audit_trail() {
    let decision =
        judge(json!([grant("alice-web", json!({}))]), debug_container("general", "busybox:1.36", Some("app")));
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.audit_annotations["grant.dbg"], "shop/alice-web approved by carol");
    assert_eq!(
        decision.grant_uses,
        [egate_guest::inputs::GrantUse { grant: "alice-web".into(), container: "dbg".into() }]
    );
}

#[test]
fn without_a_grant_the_message_says_how_to_ask_for_one() {
    let decision = judge(json!([]), debug_container("general", "busybox:1.36", Some("app")));
    assert!(!decision.allowed);
    assert_eq!(
        decision.message,
        "no live DebugGrant lets \"alice\" add ephemeral container \"dbg\" (image \"busybox:1.36\", --target \"app\", \
         profile general) to pod shop/web: there is none for this pod\n\
         to ask for one: egate grant request web -n shop --user alice --image busybox:1.36 --target app \
         --profile general --duration 30m --reason \"...\", and have an approver run egate grant approve with it"
    );
}

#[test]
fn each_field_of_a_grant_must_match() {
    let cases = [
        (json!({"subjects": {"users": ["bob"]}}), "it is not for user \"alice\" nor any of their groups"),
        (json!({"targetContainers": []}), "it allows no --target, and the container targets \"app\""),
        (json!({"targetContainers": ["sidecar"]}), "--target \"app\" is not one of [\"sidecar\"]"),
        (json!({"images": ["alpine:*"]}), "image \"busybox:1.36\" is not one of [\"alpine:*\"]"),
        (
            json!({"profile": "restricted"}),
            "the container asks for more than profile restricted allows: allowPrivilegeEscalation != false",
        ),
        (
            json!({"profile": "netadmin"}),
            "the container asks for more than profile netadmin allows: non-default capabilities (container \"dbg\" must not include \"SYS_PTRACE\"",
        ),
    ];
    for (field, miss) in cases {
        let decision =
            judge(json!([grant("g", field.clone())]), debug_container("general", "busybox:1.36", Some("app")));
        assert!(!decision.allowed, "{field}");
        assert!(
            decision.message.contains(&format!("grant \"g\" (approved by carol, until 2026-12-03T11:00:00Z): {miss}")),
            "{field}: {}",
            decision.message
        );
    }
}

#[test]
fn a_group_grant_admits_its_members() {
    let by_group = grant("sre", json!({"subjects": {"groups": ["sre"]}}));
    assert!(judge(json!([by_group.clone()]), debug_container("general", "busybox:1.36", Some("app"))).allowed);
    let other =
        judge_with(json!([by_group]), debug_container("general", "busybox:1.36", Some("app")), "bob", &["dev"], "{}");
    assert!(!other.allowed);
}

#[test]
fn profiles_admit_what_they_cover_and_nothing_broader() {
    let order = ["restricted", "baseline", "general", "netadmin", "sysadmin"];
    let covers = |granted: &str, asked: &str| match (granted, asked) {
        (g, a) if g == a => true,
        ("sysadmin", _) => true,
        ("general" | "netadmin", "restricted" | "baseline") => true,
        ("baseline", "restricted") => true,
        _ => false,
    };
    for granted in order {
        for asked in order {
            let decision = judge(
                json!([grant("g", json!({"profile": granted}))]),
                debug_container(asked, "busybox:1.36", Some("app")),
            );
            assert_eq!(
                decision.allowed,
                covers(granted, asked),
                "grant {granted}, kubectl --profile={asked}: {}",
                decision.message
            );
        }
    }
}

#[test]
fn images_match_as_written_or_normalised() {
    let normalised = grant("g", json!({"images": ["docker.io/library/busybox:*"]}));
    assert!(judge(json!([normalised]), debug_container("general", "busybox:1.36", Some("app"))).allowed);
}

#[test]
fn other_namespaces_and_break_glass_need_no_grant() {
    let elsewhere = judge_with(
        json!([]),
        debug_container("sysadmin", "busybox", None),
        "alice",
        &[],
        r#"{"namespaces": ["prod-*"]}"#,
    );
    assert!(elsewhere.allowed, "shop is not covered");
    let glass = judge_with(
        json!([]),
        debug_container("sysadmin", "busybox", None),
        "alice",
        &["oncall"],
        r#"{"breakGlassGroups": ["oncall"]}"#,
    );
    assert!(glass.allowed);
    assert!(glass.audit_annotations["break-glass"].contains("used break-glass group \"oncall\""), "{glass:?}");
    assert!(glass.warnings[0].ends_with("this debug session is audited"));
}

#[test]
fn without_the_input_the_policy_cannot_decide() {
    let bytes = debug_request(&web_pod(), debug_container("general", "busybox:1.36", None), "alice", &[]);
    let error = evaluate(&Request::parse(&bytes).unwrap(), &GrantSettings::default()).unwrap_err();
    assert!(error.message().contains("egateInputs"), "{error}");
}
