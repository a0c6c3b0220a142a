//! CEL rules evaluated in the host: `matchConditions` and `validations`.
//!
//! Expressions are parsed once, at load, with the `cel` crate (through
//! `kube-cel`, which adds the Kubernetes CEL libraries: `lowerAscii`,
//! `split`, `isSorted`, `quantity`, `url`...). Optional-safe access
//! (`object.?metadata.?labels`) is enabled; `cel` 0.13 handles it well for
//! present fields only (a missing one yields a nested optional), so rules
//! test absent fields with `has()`. An expression naming a variable
//! other than `object`, `oldObject`, `request` and `params` is refused at
//! load, with its position.
//!
//! Variables are bound lazily: the request JSON is turned into CEL values
//! only when a rule first reads one, once per request for all rules.

use std::borrow::Cow;
use std::sync::OnceLock;

use kube_cel::cel::common::ast::{EntryExpr, Expr};
use kube_cel::cel::context::VariableResolver;
use kube_cel::cel::parser::{Expression, Parser};
use kube_cel::cel::{self, Context, Value};
use kube_cel::KubeCelExt;

/// The variables a rule may read.
pub const VARIABLES: [&str; 4] = ["object", "oldObject", "request", "params"];

/// Names CEL itself defines that parse as identifiers (type names, the
/// `optional` namespace).
const BUILTIN_NAMES: [&str; 11] =
    ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "optional"];

/// One compiled CEL expression.
#[derive(Debug)]
pub struct CelExpression {
    source: String,
    expression: Expression,
}

impl CelExpression {
    /// Parses `source`; the error gives the position and what is wrong.
    pub fn compile(source: &str) -> Result<Self, String> {
        let expression = Parser::new().enable_optional_syntax(true).parse(source).map_err(|errors| {
            errors.errors.iter().map(|e| format!("at {}:{}: {}", e.pos.0, e.pos.1, e.msg)).collect::<Vec<_>>().join("; ")
        })?;
        if let Some(unknown) = unknown_variable(&expression.expr, &mut Vec::new()) {
            return Err(format!(
                "{} unknown variable `{unknown}`: rules may read {}",
                position_of(source, &unknown),
                VARIABLES.join(", ")
            ));
        }
        Ok(Self { source: source.to_string(), expression })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against one request's variables.
    pub fn evaluate(&self, input: &Bindings<'_>) -> Result<Value, String> {
        let mut scope = root_context().new_inner_scope();
        scope.set_variable_resolver(input);
        scope.resolve(&self.expression).map_err(|e| e.to_string())
    }

    /// Evaluates an expression that must yield a bool.
    pub fn evaluate_bool(&self, input: &Bindings<'_>) -> Result<bool, String> {
        match self.evaluate(input)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("it yields {} where a bool is needed", type_name(&other))),
        }
    }

    /// Evaluates an expression that must yield a string (a `messageExpression`).
    pub fn evaluate_string(&self, input: &Bindings<'_>) -> Result<String, String> {
        match self.evaluate(input)? {
            Value::String(s) => Ok(s.to_string()),
            other => Err(format!("it yields {} where a string is needed", type_name(&other))),
        }
    }
}

/// The standard and Kubernetes functions, registered once per process.
fn root_context() -> &'static Context<'static> {
    static ROOT: OnceLock<Context<'static>> = OnceLock::new();
    ROOT.get_or_init(|| Context::default().with_all())
}

/// The first identifier read outside the variables, comprehension
/// variables in scope and CEL's own names.
fn unknown_variable(expr: &Expr, bound: &mut Vec<String>) -> Option<String> {
    let check = |e: &Expr, bound: &mut Vec<String>| unknown_variable(e, bound);
    match expr {
        Expr::Ident(name) => {
            let known = VARIABLES.contains(&name.as_str())
                || BUILTIN_NAMES.contains(&name.as_str())
                || name.starts_with('@')
                || bound.iter().any(|b| b == name);
            (!known).then(|| name.clone())
        }
        Expr::Call(call) => call
            .target
            .iter()
            .map(|t| &t.expr)
            .chain(call.args.iter().map(|a| &a.expr))
            .find_map(|e| check(e, bound)),
        Expr::Comprehension(comp) => {
            if let Some(found) = check(&comp.iter_range.expr, bound).or_else(|| check(&comp.accu_init.expr, bound)) {
                return Some(found);
            }
            let depth = bound.len();
            bound.push(comp.iter_var.clone());
            bound.extend(comp.iter_var2.clone());
            bound.push(comp.accu_var.clone());
            let found = [&comp.loop_cond, &comp.loop_step, &comp.result].into_iter().find_map(|e| check(&e.expr, bound));
            bound.truncate(depth);
            found
        }
        Expr::List(list) => list.elements.iter().find_map(|e| check(&e.expr, bound)),
        Expr::Map(map) => map.entries.iter().find_map(|entry| entry_unknown(&entry.expr, bound)),
        Expr::Struct(s) => s.entries.iter().find_map(|entry| entry_unknown(&entry.expr, bound)),
        Expr::Select(select) => check(&select.operand.expr, bound),
        _ => None,
    }
}

fn entry_unknown(entry: &EntryExpr, bound: &mut Vec<String>) -> Option<String> {
    match entry {
        EntryExpr::StructField(field) => unknown_variable(&field.value.expr, bound),
        EntryExpr::MapEntry(e) => unknown_variable(&e.key.expr, bound).or_else(|| unknown_variable(&e.value.expr, bound)),
    }
}

/// `at LINE:COLUMN:` of the first use of `name` as an identifier (the
/// parser keeps no positions for identifiers).
fn position_of(source: &str, name: &str) -> String {
    for (line_no, line) in source.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line[from..].find(name) {
            let start = from + found;
            let end = start + name.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            if !is_word(before) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return format!("at {}:{}:", line_no + 1, line[..start].chars().count());
            }
            from = end;
        }
    }
    "at 1:0:".into()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Bool(_) => "a bool",
        Value::Null => "null",
        _ => "a value",
    }
}

/// One request's CEL variables, built from its JSON on first use and
/// shared by every rule of every policy that judges it.
pub struct CelRequest<'r> {
    request: Cow<'r, str>,
    parsed: OnceLock<Option<ParsedRequest>>,
}

struct ParsedRequest {
    object: Value,
    old_object: Value,
    request: Value,
}

impl<'r> CelRequest<'r> {
    /// Variables of the AdmissionRequest JSON `request`.
    pub fn new(request: impl Into<Cow<'r, str>>) -> Self {
        Self { request: request.into(), parsed: OnceLock::new() }
    }

    /// The request JSON these variables come from.
    pub fn json(&self) -> &str {
        &self.request
    }

    fn parsed(&self) -> Option<&ParsedRequest> {
        self.parsed
            .get_or_init(|| {
                let mut request: serde_json::Value = serde_json::from_str(&self.request).ok()?;
                let fields = request.as_object_mut()?;
                let object = fields.remove("object").unwrap_or_default();
                let old_object = fields.remove("oldObject").unwrap_or_default();
                fields.remove("options");
                Some(ParsedRequest {
                    object: cel::to_value(object).ok()?,
                    old_object: cel::to_value(old_object).ok()?,
                    request: cel::to_value(request).ok()?,
                })
            })
            .as_ref()
    }
}

/// What one policy's rules see: the request's variables and its `params`.
pub struct Bindings<'a> {
    /// The request's variables.
    pub request: &'a CelRequest<'a>,
    /// The policy's settings.
    pub params: &'a Value,
}

impl VariableResolver for Bindings<'_> {
    fn resolve(&self, variable: &str) -> Option<Value> {
        match variable {
            "params" => Some(self.params.clone()),
            "object" => self.request.parsed().map(|p| p.object.clone()),
            "oldObject" => self.request.parsed().map(|p| p.old_object.clone()),
            "request" => self.request.parsed().map(|p| p.request.clone()),
            _ => None,
        }
    }
}

/// Settings JSON as the CEL `params` value.
pub fn params_value(settings: &serde_json::Value) -> Value {
    cel::to_value(settings).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = r#"{"uid": "u", "operation": "UPDATE", "namespace": "shop",
        "userInfo": {"username": "alice", "groups": ["dev", "sre"]},
        "object": {"metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}],
                            "ephemeralContainers": [{"name": "a", "image": "busybox:1.36"},
                                                    {"name": "b", "image": "ghcr.io/x/y:1"}]}},
        "oldObject": {"spec": {"containers": [{"name": "app"}]}}}"#;

    fn eval(source: &str) -> Result<bool, String> {
        let params = params_value(&serde_json::json!({"max": 3, "registries": ["docker.io", "ghcr.io"]}));
        let request = CelRequest::new(REQUEST);
        CelExpression::compile(source)?.evaluate_bool(&Bindings { request: &request, params: &params })
    }

    #[test]
    fn what_validating_admission_policy_authors_reach_for() {
        for rule in [
            "object.spec.ephemeralContainers.size() <= params.max",
            "has(object.metadata.labels) && !has(object.metadata.annotations)",
            "object.spec.ephemeralContainers.all(c, c.image.contains(':'))",
            "object.spec.ephemeralContainers.exists(c, c.image.startsWith('ghcr.io/'))",
            "object.spec.ephemeralContainers.exists_one(c, c.name == 'a')",
            "object.spec.ephemeralContainers.map(c, c.name) == ['a', 'b']",
            "object.spec.ephemeralContainers.filter(c, c.image.endsWith(':1')).size() == 1",
            "'sre' in request.userInfo.groups",
            "request.namespace.matches('^sh.p$')",
            "request.operation == 'UPDATE' && request.userInfo.username.lowerAscii() == 'alice'",
            // Optional-safe access works on present fields; cel 0.13 wraps a
            // missing one in a nested optional, so prefer has() for those.
            "object.?metadata.?labels.?app.orValue('none') == 'web'",
        ] {
            assert_eq!(eval(rule), Ok(true), "{rule}");
        }
        assert_eq!(eval("object.spec.ephemeralContainers.size() > params.max"), Ok(false));
    }

    #[test]
    fn syntax_errors_and_unknown_variables_have_positions() {
        let err = CelExpression::compile("object.spec.containers.size( > 1").unwrap_err();
        assert!(err.starts_with("at 1:"), "{err}");
        let err = CelExpression::compile("object.spec.x == 1 &&\n  pod.spec.hostNetwork").unwrap_err();
        assert_eq!(err, "at 2:2: unknown variable `pod`: rules may read object, oldObject, request, params");
        // Comprehension variables are in scope only inside their macro.
        assert!(CelExpression::compile("object.spec.containers.all(c, c.name != '')").is_ok());
        assert!(CelExpression::compile("object.spec.containers.all(c, true) && c.name == ''").is_err());
    }

    #[test]
    fn a_rule_that_is_not_a_bool_or_fails_is_an_error() {
        assert!(eval("object.metadata.name").unwrap_err().contains("yields a string"));
        assert!(eval("object.spec.nothing.size() > 0").is_err());
    }
}
