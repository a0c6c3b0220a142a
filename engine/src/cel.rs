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
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use kube_cel::KubeCelExt;

pub mod cost;

use crate::review::ObjectIndex;
use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr, LiteralValue, MapEntryExpr, MapExpr};
use kube_cel::cel::context::VariableResolver;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::parser::{Expression, Parser};
use kube_cel::cel::{Context, Value};

/// The variables a rule may read.
pub const VARIABLES: [&str; 4] = ["object", "oldObject", "request", "params"];

/// Names CEL itself defines that parse as identifiers (type names, the
/// `optional` namespace).
const BUILTIN_NAMES: [&str; 11] =
    ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "optional"];

/// The namespaces of the Kubernetes CEL libraries' functions
/// (`jsonpatch.escapeKey`, `math.greatest`, `sets.contains`, ...).
const FUNCTION_NAMESPACES: [&str; 5] = ["jsonpatch", "math", "sets", "strings", "base64"];

/// Why an expression does not compile; each part says where, as
/// `at LINE:COLUMN:` (column from 0, as the CEL parser counts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The parser's errors.
    #[error("{}", .0.iter().map(|(line, column, message)| format!("at {line}:{column}: {message}")).collect::<Vec<_>>().join("; "))]
    Syntax(Vec<(usize, usize, String)>),
    /// A variable the rules cannot read.
    #[error("at {line}:{column}: unknown variable `{name}`: rules may read {readable}")]
    UnknownVariable { name: String, line: usize, column: usize, readable: String },
    /// Object construction (`Type{field: value}`), which the evaluator
    /// cannot run (it would panic): only a MutatingAdmissionPolicy's
    /// mutations build objects, and there they are built as maps.
    #[error(
        "at {line}:{column}: `{type_name}{{...}}` builds an object, which egate's CEL rules cannot do: write a map instead, as {{'field': value}}"
    )]
    ObjectConstruction { type_name: String, line: usize, column: usize },
}

/// What an expression may name, beside CEL's own names.
#[derive(Debug, Clone, Copy)]
pub struct Environment<'a> {
    /// The variables it may read.
    pub variables: &'a [&'a str],
    /// The names of `variables.NAME` it may read (a Kubernetes policy's
    /// `variables` declared before it); `None`: `variables` is not one.
    pub composited: Option<&'a [&'a str]>,
    /// Whether `Type{field: value}` builds a map (a MutatingAdmissionPolicy's
    /// mutations), rather than being refused.
    pub objects_as_maps: bool,
}

impl Environment<'static> {
    /// What egate's own `matchConditions` and `validations` may name.
    pub const EGATE: Environment<'static> =
        Environment { variables: &VARIABLES, composited: None, objects_as_maps: false };
}

/// One compiled CEL expression.
#[derive(Debug)]
pub struct CelExpression {
    source: String,
    expression: Expression,
    reads: Reads,
    /// The cost of the nodes that run every time it is evaluated (see [`cost`]).
    once: u64,
}

impl CelExpression {
    /// Parses `source`; the error gives the position and what is wrong.
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        Self::compile_in(source, &Environment::EGATE)
    }

    /// Parses `source` for an expression that may name what `environment`
    /// says. `variables.NAME` is read as the variable `variables.NAME`, so
    /// each composited variable is evaluated only when an expression reads it.
    pub fn compile_in(source: &str, environment: &Environment) -> Result<Self, CompileError> {
        let mut expression = Parser::new().enable_optional_syntax(true).parse(source).map_err(|errors| {
            CompileError::Syntax(
                errors.errors.iter().map(|e| (e.pos.0 as usize, e.pos.1 as usize, e.msg.clone())).collect(),
            )
        })?;
        if let Some(type_name) = rewrite(&mut expression.expr, environment) {
            let (line, column) = position_of(source, &type_name);
            return Err(CompileError::ObjectConstruction { type_name, line, column });
        }
        if let Some(name) = unknown_variable(&expression.expr, &mut Vec::new(), environment) {
            let (line, column) = position_of(source, name.strip_prefix("variables.").unwrap_or(&name));
            let mut readable: Vec<String> = environment.variables.iter().map(|v| v.to_string()).collect();
            readable.extend(environment.composited.unwrap_or_default().iter().map(|v| format!("variables.{v}")));
            return Err(CompileError::UnknownVariable { name, line, column, readable: readable.join(", ") });
        }
        let mut reads = Reads::default();
        reads.record(&expression.expr);
        let once = cost::instrument(&mut expression.expr);
        Ok(Self { source: source.to_string(), expression, reads, once })
    }

    /// What the expression reads of `object` and `oldObject`.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against one request's variables, within the API server's
    /// cost limit of one evaluation ([`cost::PER_CALL_LIMIT`]): past it, the
    /// error is [`cost::LIMIT_EXCEEDED`].
    pub fn evaluate(&self, input: &dyn VariableResolver) -> Result<Value, String> {
        let mut scope = root_context().new_inner_scope();
        scope.set_variable_resolver(input);
        let (result, exceeded) = cost::metered(self.once, || scope.resolve(&self.expression));
        if exceeded {
            return Err(cost::LIMIT_EXCEEDED.to_string());
        }
        result.map_err(|e| e.to_string())
    }

    /// Evaluates an expression that must yield a bool.
    pub fn evaluate_bool(&self, input: &dyn VariableResolver) -> Result<bool, String> {
        match self.evaluate(input)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("it yields {} where a bool is needed", type_name(&other))),
        }
    }

    /// Evaluates an expression that must yield a string (a `messageExpression`).
    pub fn evaluate_string(&self, input: &dyn VariableResolver) -> Result<String, String> {
        match self.evaluate(input)? {
            Value::String(s) => Ok(s.to_string()),
            other => Err(format!("it yields {} where a string is needed", type_name(&other))),
        }
    }
}

/// The parts of `object` (or `oldObject`) that rules read: binding a whole
/// Pod as CEL values costs far more than running a rule, so only the
/// selected fields are built. A field whose only use is `size()` is bound
/// by its size alone: a list as that many nulls, a map as its keys with
/// null values (a string as itself). A field used in any other way than
/// selecting into it (a macro's range, a function argument) is kept whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    whole: bool,
    count: bool,
    fields: std::collections::BTreeMap<String, Projection>,
}

impl Projection {
    /// Everything.
    pub fn whole() -> Self {
        Self { whole: true, ..Self::default() }
    }

    /// Only the size.
    pub fn count() -> Self {
        Self { count: true, ..Self::default() }
    }

    fn is_empty(&self) -> bool {
        !self.whole && !self.count && self.fields.is_empty()
    }

    /// Adds what `other` needs.
    pub fn merge(&mut self, other: &Projection) {
        // Counted on one side and selected into (or whole) on the other: whole.
        let count_and_more =
            (self.count && !other.is_empty() && !other.count) || (other.count && !self.is_empty() && !self.count);
        if self.whole || other.whole || count_and_more {
            *self = Self::whole();
        } else if other.count {
            *self = Self::count();
        } else {
            for (field, projection) in &other.fields {
                self.fields.entry(field.clone()).or_default().merge(projection);
            }
        }
    }

    /// Adds a path, needing `end` at its end (whole or count).
    fn add(&mut self, path: &[String], end: &Projection) {
        match path.split_first() {
            None => self.merge(end),
            _ if self.whole => {}
            _ if self.count => *self = Self::whole(),
            Some((first, rest)) => self.fields.entry(first.clone()).or_default().add(rest, end),
        }
    }

    /// Whether it selects fields (rather than the whole, or a size).
    fn selects(&self) -> bool {
        !self.whole && !self.count
    }

    fn field(&self, name: &str) -> Option<&Projection> {
        if self.whole || self.count { Some(self) } else { self.fields.get(name) }
    }
}

/// What an expression reads of `object` and of `oldObject`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads {
    /// Of `object`.
    pub object: Projection,
    /// Of `oldObject`.
    pub old_object: Projection,
}

impl Reads {
    /// Adds what `other` reads.
    pub fn merge(&mut self, other: &Reads) {
        self.object.merge(&other.object);
        self.old_object.merge(&other.old_object);
    }

    fn record(&mut self, expr: &Expr) {
        self.record_needing(expr, &Projection::whole());
    }

    /// Records `expr`; if it selects into `object` or `oldObject`, what it
    /// selects is needed as `end` says.
    fn record_needing(&mut self, expr: &Expr, end: &Projection) {
        if let Some((root, path)) = selection(expr) {
            match root {
                "object" => self.object.add(&path, end),
                "oldObject" => self.old_object.add(&path, end),
                _ => {}
            }
            return;
        }
        if let Expr::Call(call) = expr
            && call.func_name == "size"
        {
            let operand = match (&call.target, call.args.as_slice()) {
                (Some(target), []) => Some(&target.expr),
                (None, [arg]) => Some(&arg.expr),
                _ => None,
            };
            if let Some(operand) = operand {
                return self.record_needing(operand, &Projection::count());
            }
        }
        let mut visit = |e: &Expr| self.record(e);
        match expr {
            Expr::Call(call) => {
                call.target.iter().for_each(|t| visit(&t.expr));
                call.args.iter().for_each(|a| visit(&a.expr));
            }
            Expr::Comprehension(c) => [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .for_each(|e| visit(&e.expr)),
            Expr::List(list) => list.elements.iter().for_each(|e| visit(&e.expr)),
            Expr::Map(map) => map.entries.iter().for_each(|e| entry_exprs(&e.expr).into_iter().for_each(&mut visit)),
            Expr::Struct(s) => s.entries.iter().for_each(|e| entry_exprs(&e.expr).into_iter().for_each(&mut visit)),
            Expr::Select(select) => visit(&select.operand.expr),
            _ => {}
        }
    }
}

fn entry_exprs(entry: &EntryExpr) -> Vec<&Expr> {
    match entry {
        EntryExpr::StructField(field) => vec![&field.value.expr],
        EntryExpr::MapEntry(e) => vec![&e.key.expr, &e.value.expr],
    }
}

/// `object.a.b` (or `object.?a.?b`) as ("object", [a, b]); a bare
/// identifier has an empty path.
fn selection(expr: &Expr) -> Option<(&str, Vec<String>)> {
    match expr {
        Expr::Ident(name) => Some((name.as_str(), Vec::new())),
        Expr::Select(select) => {
            let (root, mut path) = selection(&select.operand.expr)?;
            path.push(select.field.clone());
            Some((root, path))
        }
        Expr::Call(call) if call.func_name == "_?._" && call.target.is_none() && call.args.len() == 2 => {
            let Expr::Literal(kube_cel::cel::common::ast::LiteralValue::String(field)) = &call.args[1].expr else {
                return None;
            };
            let (root, mut path) = selection(&call.args[0].expr)?;
            path.push(field.inner().to_string());
            Some((root, path))
        }
        _ => None,
    }
}

/// The standard and Kubernetes functions, registered once per process.
fn root_context() -> &'static Context<'static> {
    static ROOT: OnceLock<Context<'static>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut context = Context::default().with_all();
        // CEL's `type(x) == string`, which the cel crate lacks: a type is
        // read as its name (see `Bindings::resolve` for the names themselves).
        context.add_function("type", |value: Value| -> Arc<String> { Arc::new(cel_type_name(&value).to_string()) });
        cost::register(&mut context);
        context
    })
}

/// The CEL name of a value's type.
fn cel_type_name(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null_type",
        Value::Timestamp(_) => "google.protobuf.Timestamp",
        Value::Duration(_) => "google.protobuf.Duration",
        _ => "type",
    }
}

/// Reads `variables.NAME` as the identifier `variables.NAME`, and builds
/// objects as maps when `environment` says so; else returns the type name
/// of the first object construction.
fn rewrite(expr: &mut Expr, environment: &Environment) -> Option<String> {
    if let Expr::Select(select) = expr
        && !select.test
        && environment.composited.is_some()
        && matches!(&select.operand.expr, Expr::Ident(root) if root == "variables")
    {
        *expr = Expr::Ident(format!("variables.{}", select.field));
        return None;
    }
    if let Expr::Struct(object) = expr {
        if !environment.objects_as_maps {
            return Some(object.type_name.clone());
        }
        let entries = std::mem::take(&mut object.entries).into_iter().map(|entry| {
            let expr = match entry.expr {
                EntryExpr::StructField(field) => EntryExpr::MapEntry(MapEntryExpr {
                    key: IdedExpr { id: entry.id, expr: Expr::Literal(LiteralValue::String(field.field.into())) },
                    value: field.value,
                    optional: field.optional,
                }),
                map_entry => map_entry,
            };
            IdedEntryExpr { id: entry.id, expr }
        });
        *expr = Expr::Map(MapExpr { entries: entries.collect() });
    }
    let mut found = None;
    let mut visit = |e: &mut IdedExpr| {
        if found.is_none() {
            found = rewrite(&mut e.expr, environment);
        }
    };
    match expr {
        Expr::Call(call) => {
            call.target.iter_mut().for_each(|t| visit(t));
            call.args.iter_mut().for_each(&mut visit);
        }
        Expr::Comprehension(c) => {
            [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result]
                .into_iter()
                .for_each(&mut visit)
        }
        Expr::List(list) => list.elements.iter_mut().for_each(&mut visit),
        Expr::Map(map) => map.entries.iter_mut().for_each(|entry| match &mut entry.expr {
            EntryExpr::MapEntry(e) => {
                visit(&mut e.key);
                visit(&mut e.value);
            }
            EntryExpr::StructField(field) => visit(&mut field.value),
        }),
        Expr::Select(select) => visit(&mut select.operand),
        _ => {}
    }
    found
}

/// The first identifier read outside the variables, comprehension
/// variables in scope and CEL's own names.
fn unknown_variable(expr: &Expr, bound: &mut Vec<String>, environment: &Environment) -> Option<String> {
    let check = |e: &Expr, bound: &mut Vec<String>| unknown_variable(e, bound, environment);
    match expr {
        Expr::Ident(name) => {
            let composited = name
                .strip_prefix("variables.")
                .is_some_and(|v| environment.composited.is_some_and(|names| names.contains(&v)));
            let known = environment.variables.contains(&name.as_str())
                || composited
                || BUILTIN_NAMES.contains(&name.as_str())
                || name.starts_with('@')
                || bound.iter().any(|b| b == name);
            (!known).then(|| name.clone())
        }
        Expr::Call(call) => {
            // `jsonpatch.escapeKey(...)`: a function of a library, not a variable.
            let library =
                |t: &&IdedExpr| matches!(&t.expr, Expr::Ident(n) if FUNCTION_NAMESPACES.contains(&n.as_str()));
            let target = call.target.as_deref().filter(|t| !library(t)).map(|t| &t.expr);
            target.into_iter().chain(call.args.iter().map(|a| &a.expr)).find_map(|e| check(e, bound))
        }
        Expr::Comprehension(comp) => {
            if let Some(found) = check(&comp.iter_range.expr, bound).or_else(|| check(&comp.accu_init.expr, bound)) {
                return Some(found);
            }
            let depth = bound.len();
            bound.push(comp.iter_var.clone());
            bound.extend(comp.iter_var2.clone());
            bound.push(comp.accu_var.clone());
            let found =
                [&comp.loop_cond, &comp.loop_step, &comp.result].into_iter().find_map(|e| check(&e.expr, bound));
            bound.truncate(depth);
            found
        }
        Expr::List(list) => list.elements.iter().find_map(|e| check(&e.expr, bound)),
        Expr::Map(map) => map.entries.iter().find_map(|entry| entry_unknown(&entry.expr, bound, environment)),
        Expr::Struct(s) => s.entries.iter().find_map(|entry| entry_unknown(&entry.expr, bound, environment)),
        Expr::Select(select) => check(&select.operand.expr, bound),
        _ => None,
    }
}

fn entry_unknown(entry: &EntryExpr, bound: &mut Vec<String>, environment: &Environment) -> Option<String> {
    match entry {
        EntryExpr::StructField(field) => unknown_variable(&field.value.expr, bound, environment),
        EntryExpr::MapEntry(e) => unknown_variable(&e.key.expr, bound, environment)
            .or_else(|| unknown_variable(&e.value.expr, bound, environment)),
    }
}

/// Line (from 1) and column (from 0) of the first use of `name` as an
/// identifier (the parser keeps no positions for identifiers).
fn position_of(source: &str, name: &str) -> (usize, usize) {
    for (line_no, line) in source.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line[from..].find(name) {
            let start = from + found;
            let end = start + name.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            if !is_word(before) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return (line_no + 1, line[..start].chars().count());
            }
            from = end;
        }
    }
    (1, 0)
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

/// One request's CEL variables, each built from the request JSON the first
/// time a rule reads it, and shared by every rule of every policy that
/// judges the request.
pub struct CelRequest<'r> {
    request: Cow<'r, str>,
    /// Where `object` and `oldObject` are in `request`, found once.
    objects: OnceLock<[Option<Range<usize>>; 2]>,
    reads: &'r Reads,
    object: OnceLock<Option<Value>>,
    old_object: OnceLock<Option<Value>>,
    fields: OnceLock<Option<Value>>,
    /// The members of `object` and `oldObject`, and of their `spec`s, when
    /// the validating pass found them.
    indexes: [Option<&'r ObjectIndex<'r>>; 2],
}

impl<'r> CelRequest<'r> {
    /// Variables of the AdmissionRequest JSON `request`, building only
    /// what `reads` says the rules read.
    pub fn new(request: impl Into<Cow<'r, str>>, reads: &'r Reads) -> Self {
        Self {
            request: request.into(),
            objects: OnceLock::new(),
            reads,
            object: OnceLock::new(),
            old_object: OnceLock::new(),
            fields: OnceLock::new(),
            indexes: [None, None],
        }
    }

    /// [`CelRequest::new`], when the caller has already found `object` and
    /// `oldObject` (slices of `request`).
    pub fn with_objects(
        request: &'r str,
        object: Option<&'r str>,
        old_object: Option<&'r str>,
        indexes: [Option<&'r ObjectIndex<'r>>; 2],
        reads: &'r Reads,
    ) -> Self {
        let mut this = Self::new(request, reads);
        this.indexes = indexes;
        let range = |part: &str| egate_json::range_of(request.as_bytes(), part.as_bytes());
        let _ = this.objects.set([object.map(range), old_object.map(range)]);
        this
    }

    /// The JSON text of `object` (`old`: of `oldObject`), if the request has one.
    fn object_json(&self, old: bool) -> Option<&[u8]> {
        let [object, old_object] = self.objects.get_or_init(|| {
            let text = self.request.as_bytes();
            let mut found = [None, None];
            for (key, value) in egate_json::members(text).into_iter().flatten() {
                if key.is("object") {
                    found[0] = Some(egate_json::range_of(text, value));
                } else if key.is("oldObject") {
                    found[1] = Some(egate_json::range_of(text, value));
                }
            }
            found
        });
        let range = if old { old_object } else { object };
        range.clone().map(|range| &self.request.as_bytes()[range])
    }

    /// The request JSON these variables come from.
    pub fn json(&self) -> &str {
        &self.request
    }

    /// `object` or `oldObject`, converted straight from its JSON.
    fn object(&self, old: bool) -> Option<Value> {
        let cell = if old { &self.old_object } else { &self.object };
        cell.get_or_init(|| {
            let projection = if old { &self.reads.old_object } else { &self.reads.object };
            if let Some(index) = self.indexes[usize::from(old)].filter(|_| projection.selects()) {
                return selected(&index.members, index.spec.as_deref(), projection);
            }
            match self.object_json(old) {
                Some(raw) => cel_from_json(raw, projection),
                None => Some(Value::Null),
            }
        })
        .clone()
    }

    /// `request`: the AdmissionRequest without its objects.
    fn fields(&self) -> Option<Value> {
        self.fields
            .get_or_init(|| {
                let mut entries: HashMap<Key, Value> = HashMap::new();
                for (key, value) in egate_json::members(self.request.as_bytes())? {
                    let name = key.name()?;
                    if !["object", "oldObject", "options"].contains(&name.as_ref()) {
                        let value = cel_from_json(value, &Projection::whole())?;
                        entries.insert(Key::String(Arc::new(name.into_owned())), value);
                    }
                }
                Some(Value::Map(Map { map: Arc::new(entries) }))
            })
            .clone()
    }
}

/// The selected members of an object whose members the validating pass
/// found (`spec`: its `spec`'s members too), each converted from its text:
/// nothing is skipped again.
fn selected(members: &[(Cow<str>, &str)], spec: Option<&[(Cow<str>, &str)]>, projection: &Projection) -> Option<Value> {
    let mut entries: HashMap<Key, Value> = HashMap::with_capacity(projection.fields.len());
    for (name, text) in members {
        let Some(field) = projection.field(name) else { continue };
        let value = match spec.filter(|_| name == "spec" && field.selects()) {
            Some(spec) => selected(spec, None, field)?,
            None => cel_from_json(text.as_bytes(), field)?,
        };
        entries.insert(Key::String(Arc::new(name.to_string())), value);
    }
    Some(Value::Map(Map { map: Arc::new(entries) }))
}

/// JSON text to a CEL value without an intermediate `serde_json::Value`,
/// keeping only the projected fields. The members of an object that are
/// not projected are skipped by [`egate_json`] without being parsed (the
/// request was validated when it arrived).
fn cel_from_json(json: &[u8], projection: &Projection) -> Option<Value> {
    use serde::de::DeserializeSeed;
    if projection.count {
        if let Some(members) = egate_json::members(json) {
            let mut keys: HashMap<Key, Value> = HashMap::new();
            for (key, _) in members {
                keys.insert(Key::String(Arc::new(key.name()?.into_owned())), Value::Null);
            }
            return Some(Value::Map(Map { map: Arc::new(keys) }));
        }
        if json.trim_ascii_start().starts_with(b"[") {
            return Some(Value::List(Arc::new(vec![Value::Null; egate_json::elements(json).count()])));
        }
        return cel_from_json(json, &Projection::whole());
    }
    if !projection.whole
        && let Some(members) = egate_json::members(json)
    {
        let mut entries: HashMap<Key, Value> = HashMap::with_capacity(projection.fields.len());
        for (key, value) in members {
            let name = key.name()?;
            if let Some(field) = projection.field(&name) {
                entries.insert(Key::String(Arc::new(name.into_owned())), cel_from_json(value, field)?);
            }
        }
        return Some(Value::Map(Map { map: Arc::new(entries) }));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    CelSeed(projection).deserialize(&mut deserializer).ok()
}

#[derive(Clone, Copy)]
struct CelSeed<'p>(&'p Projection);

impl<'de> serde::de::DeserializeSeed<'de> for CelSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CelSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        // CEL compares int and uint apart: JSON integers are ints, as
        // Kubernetes' CEL binds them, when they fit.
        Ok(i64::try_from(v).map_or(Value::UInt(v), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(Arc::new(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::List(Arc::new(items)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: HashMap<Key, Value> = HashMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Cow<str>>()? {
            match self.0.field(&key) {
                Some(projection) => {
                    let value = map.next_value_seed(CelSeed(projection))?;
                    entries.insert(Key::String(Arc::new(key.into_owned())), value);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Map(Map { map: Arc::new(entries) }))
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
            "object" => self.request.object(false),
            "oldObject" => self.request.object(true),
            "request" => self.request.fields(),
            // Type names, as `type()` gives them.
            name if BUILTIN_NAMES.contains(&name) && name != "optional" => {
                Some(Value::String(Arc::new(name.to_string())))
            }
            _ => None,
        }
    }
}

/// A CEL value as JSON: what a MutatingAdmissionPolicy's mutation built.
/// Timestamps and durations are written as Kubernetes writes them (RFC
/// 3339, Go duration text); what JSON cannot hold is an error.
pub fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map(Json::Number).ok_or("a double that JSON cannot hold")?
        }
        Value::String(s) => Json::String(s.to_string()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map.map.iter() {
                let Key::String(key) = key else { return Err(format!("a map key that is not a string ({key:?})")) };
                object.insert(key.to_string(), to_json(value)?);
            }
            Json::Object(object)
        }
        Value::Timestamp(t) => Json::String(t.to_rfc3339()),
        other => return Err(format!("{} that JSON cannot hold", type_name(other))),
    })
}

/// Settings JSON as the CEL `params` value.
pub fn params_value(settings: &serde_json::Value) -> Value {
    // Through the same conversion as the request: JSON integers are ints.
    let json = serde_json::to_vec(settings).expect("JSON values serialise");
    cel_from_json(&json, &Projection::whole()).unwrap_or(Value::Null)
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
        let expression = CelExpression::compile(source).map_err(|e| e.to_string())?;
        let request = CelRequest::new(REQUEST, expression.reads());
        expression.evaluate_bool(&Bindings { request: &request, params: &params })
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
            "type(object.metadata.name) == string",
            "type(params.max) == int",
            "type(object.spec) == map",
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
    fn only_what_rules_select_is_bound() {
        let reads =
            CelExpression::compile("object.spec.ephemeralContainers.size() > 0 && object.?metadata.?labels.hasValue()")
                .unwrap()
                .reads()
                .clone();
        let mut expected = Projection::default();
        expected.add(&["spec".into(), "ephemeralContainers".into()], &Projection::count());
        expected.add(&["metadata".into(), "labels".into()], &Projection::whole());
        assert_eq!(reads.object, expected);
        assert_eq!(reads.old_object, Projection::default());
        let counted = CelExpression::compile("size(object) > 0").unwrap().reads().object.clone();
        assert_eq!(counted, Projection::count());
        // Used both ways, the field is bound whole.
        let both = "object.spec.containers.size() > 0 && object.spec.containers.all(c, c.name != '')";
        let mut whole = Projection::default();
        whole.add(&["spec".into(), "containers".into()], &Projection::whole());
        assert_eq!(CelExpression::compile(both).unwrap().reads().object, whole);
    }

    #[test]
    fn a_field_read_only_for_its_size_has_the_right_size() {
        for rule in [
            "object.spec.ephemeralContainers.size() == 2",
            "size(object.spec.ephemeralContainers) == 2",
            "size(object.metadata.labels) == 1",
            "object.metadata.name.size() == 3",
            "size(object) == 2",
            "size(oldObject.spec.containers) == 1",
            "object.spec.ephemeralContainers.size() == 2 && object.spec.ephemeralContainers[1].name == 'b'",
            "object.spec.ephemeralContainers.size() == 2 && object.metadata.labels.app == 'web'",
        ] {
            assert_eq!(eval(rule), Ok(true), "{rule}");
        }
    }

    #[test]
    fn syntax_errors_and_unknown_variables_have_positions() {
        let err = CelExpression::compile("object.spec.containers.size( > 1").unwrap_err();
        assert!(matches!(&err, CompileError::Syntax(parts) if parts[0].0 == 1), "{err}");
        assert!(err.to_string().starts_with("at 1:"), "{err}");
        let err = CelExpression::compile("object.spec.x == 1 &&\n  pod.spec.hostNetwork").unwrap_err();
        assert!(
            matches!(&err, CompileError::UnknownVariable { name, line: 2, column: 2, .. } if name == "pod"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "at 2:2: unknown variable `pod`: rules may read object, oldObject, request, params"
        );
        // Comprehension variables are in scope only inside their macro.
        assert!(CelExpression::compile("object.spec.containers.all(c, c.name != '')").is_ok());
        assert!(CelExpression::compile("object.spec.containers.all(c, true) && c.name == ''").is_err());
    }

    #[test]
    fn object_construction_is_refused_or_built_as_a_map() {
        // The evaluator panics on it: refused at load, with its place.
        let err = CelExpression::compile("object.spec == Object.spec{x: 1}").unwrap_err();
        assert_eq!(err, CompileError::ObjectConstruction { type_name: "Object.spec".into(), line: 1, column: 15 });
        let mutation = Environment { objects_as_maps: true, ..Environment::EGATE };
        let built = CelExpression::compile_in("Object{spec: Object.spec{n: params.max}}", &mutation).unwrap();
        let params = params_value(&serde_json::json!({"max": 3}));
        let request = CelRequest::new(REQUEST, built.reads());
        let value = built.evaluate(&Bindings { request: &request, params: &params }).unwrap();
        assert_eq!(to_json(&value).unwrap(), serde_json::json!({"spec": {"n": 3}}));
    }

    #[test]
    fn composited_variables_are_named_and_checked() {
        let environment = Environment { composited: Some(&["images"]), ..Environment::EGATE };
        let rule = CelExpression::compile_in("variables.images.all(i, i != '')", &environment).unwrap();
        struct Images;
        impl VariableResolver for Images {
            fn resolve(&self, variable: &str) -> Option<Value> {
                (variable == "variables.images")
                    .then(|| Value::List(Arc::new(vec![Value::String(Arc::new("a".into()))])))
            }
        }
        assert_eq!(rule.evaluate_bool(&Images), Ok(true));
        let err = CelExpression::compile_in("variables.other == 1", &environment).unwrap_err();
        assert!(err.to_string().contains("unknown variable `variables.other`"), "{err}");
        assert!(err.to_string().contains("variables.images"), "{err}");
    }

    #[test]
    fn a_rule_that_is_not_a_bool_or_fails_is_an_error() {
        assert!(eval("object.metadata.name").unwrap_err().contains("yields a string"));
        assert!(eval("object.spec.nothing.size() > 0").is_err());
    }
}
