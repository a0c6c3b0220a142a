//! Inputs a policy declares it reads (ABI v1's optional extension, defined
//! in [`egate_abi::inputs`]): which a module declares, read once at load,
//! and the request a policy that declares some is handed, with the host's
//! [`Inputs`] for it added as the `egateInputs` member.

use egate_abi::inputs::{Input, MEMBER, SECTION};
use egate_json::{KnownValues, Selection};
use jiff::Timestamp;

use crate::decision::FailureCause;
use crate::grants::GrantIndex;
use crate::review::RequestFacts;

/// What the host has prepared for the policies that declare inputs. A
/// review without them ([`Inputs::default`]) fails each such policy,
/// saying what is missing, under its `failurePolicy`.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The cluster's debug grants, once read (`egate serve`'s watch cache,
    /// or the grants an `egate test` case or `egate eval --grants` gives).
    pub debug_grants: Option<&'a GrantIndex>,
    /// The time grants are judged at: now, except in tests.
    pub now: Timestamp,
    /// Hand every module the whole request, whatever it declares it reads
    /// (`egate test` judges both ways and warns when they differ).
    pub whole_requests: bool,
}

impl Default for Inputs<'_> {
    fn default() -> Self {
        Self { debug_grants: None, now: Timestamp::now(), whole_requests: false }
    }
}

impl<'a> Inputs<'a> {
    /// The inputs of a host that knows these grants, judged now.
    pub fn with_grants(grants: &'a GrantIndex) -> Self {
        Self { debug_grants: Some(grants), ..Self::default() }
    }
}

/// The text of a module's custom sections named `name`, joined by lines.
fn section_text(wasm: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut text: Option<Vec<u8>> = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::CustomSection(section)) = payload
            && section.name() == name
        {
            let text = text.get_or_insert_with(Vec::new);
            text.extend_from_slice(section.data());
            text.push(b'\n');
        }
    }
    text
}

/// What a module's `egate.reads` section declares it reads of the request;
/// `None` when it declares nothing (it gets the whole request).
pub(crate) fn declared_reads(wasm: &[u8]) -> Result<Option<Selection>, String> {
    let Some(text) = section_text(wasm, egate_abi::reads::SECTION) else { return Ok(None) };
    let text = String::from_utf8_lossy(&text);
    Selection::parse(text.lines())
        .map(Some)
        .map_err(|e| format!("the module's declared reads (custom section {}): {e}", egate_abi::reads::SECTION))
}

/// The request a module that declares `reads` is handed: only those
/// members, cut from the validated request without parsing it. The values
/// the validating pass found (`object`, `oldObject`, their members and
/// their `spec`'s) are jumped over rather than looked at again.
pub(crate) fn cut(request: &str, reads: &Selection, facts: &RequestFacts) -> String {
    let mut out = Vec::with_capacity(request.len() / 4);
    reads.cut_known(request.as_bytes(), &known_values(request, facts), &mut out);
    String::from_utf8(out).expect("a cut of UTF-8 text at JSON token boundaries is UTF-8")
}

/// Where the values the validating pass read are in `request`: slices of
/// it, as offsets (a slice of another text is left out).
fn known_values(request: &str, facts: &RequestFacts) -> KnownValues {
    let base = request.as_ptr() as usize;
    let offsets = |value: &str| {
        let start = (value.as_ptr() as usize).checked_sub(base)?;
        (start + value.len() <= request.len()).then_some((start, start + value.len()))
    };
    let mut spans = Vec::new();
    for (object, index) in [(facts.object, &facts.object_index), (facts.old_object, &facts.old_object_index)] {
        spans.extend(object.and_then(offsets));
        if let Some(index) = index {
            let members = index.members.iter().chain(index.spec.iter().flatten());
            spans.extend(members.filter_map(|(_, value)| offsets(value)));
        }
    }
    KnownValues::new(spans)
}

/// The inputs a module's [`SECTION`]s declare; an input this engine cannot
/// give is an error naming it.
pub(crate) fn declared(wasm: &[u8]) -> Result<Vec<Input>, String> {
    let text = section_text(wasm, SECTION).unwrap_or_default();
    let (known, unknown) = Input::parse_section(&text);
    if let Some(name) = unknown.first() {
        let names: Vec<&str> = Input::ALL.iter().map(|i| i.name()).collect();
        return Err(format!(
            "the module declares the input {name:?} (custom section {SECTION}), which this egate cannot give: it gives {}",
            names.join(", ")
        ));
    }
    Ok(known)
}

/// The request a policy that declares `declared` is handed: `request` with
/// `{"egateInputs": {...}}` added as its first member, holding each input
/// the host prepared for this request.
pub(crate) fn request_with(
    request: &str,
    declared: &[Input],
    inputs: &Inputs,
    facts: &RequestFacts,
) -> Result<String, FailureCause> {
    let mut members = String::from("{");
    for (index, input) in declared.iter().enumerate() {
        if index > 0 {
            members.push(',');
        }
        members.push_str(&format!("\"{}\":", input.name()));
        match input {
            Input::DebugGrants => {
                let grants = inputs.debug_grants.ok_or(FailureCause::InputUnavailable(*input))?;
                let pod = facts.name.as_deref().unwrap_or_default();
                let namespace = facts.namespace.as_deref().unwrap_or_default();
                members.push('[');
                for (i, grant) in grants.live(namespace, pod, facts.labels(), inputs.now).enumerate() {
                    if i > 0 {
                        members.push(',');
                    }
                    members.push_str(grant.get());
                }
                members.push(']');
            }
        }
    }
    members.push('}');
    // The request is a JSON object the review already parsed: after its
    // opening brace, either its first member or its closing brace.
    let body = request.trim_start().strip_prefix('{').ok_or_else(|| {
        FailureCause::BadOutput("cannot hand inputs to the module: the request is not a JSON object".into())
    })?;
    let separator = if body.trim_start().starts_with('}') { "" } else { "," };
    Ok(format!("{{\"{MEMBER}\":{members}{separator}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::{Grant, GrantSpec};
    use crate::review::Review;

    fn review(name: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "1", "operation": "UPDATE", "namespace": "shop", "name": name,
                        "resource": {"resource": "pods"}, "subResource": "ephemeralcontainers",
                        "userInfo": {"username": "alice"}, "object": {"metadata": {"labels": {}}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_cut_jumps_over_what_the_validating_pass_found_and_cuts_the_same() {
        let bytes =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/requests/debug-allowed.json")).unwrap();
        let parsed = Review::parse(&bytes).unwrap();
        let known = known_values(parsed.request, &parsed.facts);
        // object, oldObject, their members and their spec's members.
        assert!(known.len() > 10, "{known:?}");
        let reads =
            Selection::parse(["object.spec.ephemeralContainers[*].name", "oldObject.metadata", "userInfo"]).unwrap();
        let mut plain = Vec::new();
        reads.cut(parsed.request.as_bytes(), &mut plain);
        assert_eq!(cut(parsed.request, &reads, &parsed.facts).into_bytes(), plain);
        // Slices of another text are left out.
        assert!(known_values("{}", &parsed.facts).is_empty());
    }

    #[test]
    fn the_grants_of_the_pod_are_added_as_the_first_member() {
        let spec: GrantSpec = serde_json::from_value(serde_json::json!({
            "subjects": {"users": ["alice"]}, "pods": {"names": ["web"]}, "images": ["busybox"],
            "profile": "baseline", "duration": "1h", "reason": "r"
        }))
        .unwrap();
        let grant = Grant::from_object("shop", "g", &spec, Some("carol"), Timestamp::now()).unwrap();
        let index = GrantIndex::new([grant]);
        let inputs = Inputs::with_grants(&index);
        for (pod, expected) in [("web", 1), ("api", 0)] {
            let bytes = review(pod);
            let parsed = Review::parse(&bytes).unwrap();
            let handed = request_with(parsed.request, &[Input::DebugGrants], &inputs, &parsed.facts).unwrap();
            let value: serde_json::Value = serde_json::from_str(&handed).unwrap();
            assert_eq!(value["egateInputs"]["debugGrants"].as_array().unwrap().len(), expected, "{handed}");
            assert_eq!(value["uid"], "1");
            assert!(handed.starts_with(r#"{"egateInputs":"#));
        }
        let bytes = review("web");
        let parsed = Review::parse(&bytes).unwrap();
        let missing = request_with(parsed.request, &[Input::DebugGrants], &Inputs::default(), &parsed.facts);
        assert_eq!(missing.unwrap_err(), FailureCause::InputUnavailable(Input::DebugGrants));
        let empty = request_with(" {} ", &[Input::DebugGrants], &inputs, &parsed.facts).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&empty).is_ok(), "{empty}");
    }

    #[test]
    fn a_module_declares_inputs_in_its_custom_section() {
        let module = |section: &str| {
            let mut wasm = wat::parse_str("(module)").unwrap();
            wasm.push(0); // custom section id
            let mut payload = vec![SECTION.len() as u8];
            payload.extend(SECTION.as_bytes());
            payload.extend(section.as_bytes());
            wasm.push(payload.len() as u8);
            wasm.extend(payload);
            wasm
        };
        assert_eq!(declared(&module("debugGrants\n")), Ok(vec![Input::DebugGrants]));
        assert_eq!(declared(&wat::parse_str("(module)").unwrap()), Ok(vec![]));
        let unknown = declared(&module("secrets\n")).unwrap_err();
        assert!(unknown.contains(r#"the input "secrets""#) && unknown.contains("debugGrants"), "{unknown}");
    }
}
