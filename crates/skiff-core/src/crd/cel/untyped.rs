//! Compile checks of admission expressions (webhook `matchConditions`, a
//! ValidatingAdmissionPolicy's `matchConditions`, `validations`, `messageExpression`s,
//! `auditAnnotations` and `variables`), as apiserver 1.32's `plugin/cel` compiler runs them
//! when such an object is written: the expression is parsed with the shared environment, its
//! identifiers must be declared (`object`, `oldObject`, `request`, `namespaceObject`, and as
//! the field allows `params`, `authorizer`, `authorizer.requestResource`, `variables`), its
//! functions must exist, fields of the typed variables (`request`, `namespaceObject`,
//! `variables`) must exist, and its result must have the wanted type. Errors are worded as
//! upstream's (`compilation failed: ERROR: <input>:1:1: undeclared reference to 'x' (in
//! container '')` with the source line and a caret, `must evaluate to bool but got dyn`).
//!
//! The checker is partial, as the crate has none: types are worked out for literals,
//! operators with fixed results, the typed variables and functions whose result does not
//! depend on their arguments; anything else is "not known" and passes. So argument types
//! (`found no matching overload ...`), mixed-type list literals and mismatched conditional
//! branches are not caught here.

use super::library::{regex::go_regex, time};
use super::rewrite::{self, chain};
use super::{COMPILE_STACK, MAX_AST_DEPTH, MAX_RULE_SIZE, env, on_big_stack};
use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::{ParseErrors, Program};

/// The variables an expression may use besides `object`, `oldObject`, `request` and
/// `namespaceObject` (upstream's `OptionalVariableDeclarations` and composition).
#[derive(Debug, Clone, Copy, Default)]
pub struct Declarations<'a> {
    /// `params` (a policy with a `paramKind`).
    pub params: bool,
    /// `authorizer` and `authorizer.requestResource` (all but message expressions).
    pub authorizer: bool,
    /// `variables`, with the variables compiled before this expression, when the policy
    /// declares any (upstream's composited compiler); `None`: not declared.
    pub variables: Option<&'a [(String, ExprType)]>,
}

/// What an expression must evaluate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Conditions: validations, match conditions.
    Bool,
    /// Message expressions.
    String,
    /// Audit annotation values.
    StringOrNull,
    /// Variables.
    Any,
}

/// The static type of a compiled expression, as far as it is known (a variable's, for the
/// expressions that use it).
#[derive(Debug, Clone, PartialEq)]
pub struct ExprType(Ty);

impl ExprType {
    /// `dyn`: the type of a variable whose expression did not compile.
    pub fn dynamic() -> Self {
        ExprType(Ty::Dyn)
    }

    /// The type as cel-go names it (`bool`, `list(string)`), when it is known.
    pub fn name(&self) -> Option<String> {
        self.0.name()
    }
}

/// Why an expression is refused: upstream's detail text (the part after `Invalid value: "<expr>": `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileFailure(pub String);

/// Check `src` as an admission expression declared by `decls`, whose result must be `expect`.
pub fn check_admission_expression(
    src: &str,
    decls: &Declarations<'_>,
    expect: Expect,
) -> Result<ExprType, CompileFailure> {
    let ty = on_big_stack(COMPILE_STACK, || compile(src, decls))?;
    let ok = match (expect, &ty) {
        (_, Ty::Unknown) | (Expect::Any, _) | (Expect::Bool, Ty::Bool) | (Expect::String, Ty::String) => true,
        (Expect::StringOrNull, t) => matches!(t, Ty::String | Ty::Null),
        _ => false,
    };
    match ty.name() {
        Some(got) if !ok => Err(CompileFailure(match expect {
            Expect::Bool => format!("must evaluate to bool but got {got}"),
            Expect::String => format!("must evaluate to string but got {got}"),
            Expect::StringOrNull | Expect::Any => format!("must evaluate to one of [string null_type] but got {got}"),
        })),
        _ => Ok(ExprType(ty)),
    }
}

fn compile(src: &str, decls: &Declarations<'_>) -> Result<Ty, CompileFailure> {
    let failed = |detail: String| CompileFailure(format!("compilation failed: {detail}"));
    let size = src.chars().count();
    if size > MAX_RULE_SIZE {
        return Err(failed(format!(
            "ERROR: <input>:-1:0: expression code point size exceeds limit: size: {size}, limit {MAX_RULE_SIZE}"
        )));
    }
    let program = env::env().compile(src).map_err(|e| failed(parse_errors(src, &e)))?;
    let expr = program.expression();
    if rewrite::depth(expr, MAX_AST_DEPTH) > MAX_AST_DEPTH {
        return Err(failed(format!("ERROR: <input>:-1:0: expression recursion limit exceeded: {MAX_AST_DEPTH}")));
    }
    let mut checker = Checker { src, program: &program, decls, scopes: Vec::new(), errors: Vec::new() };
    let ty = checker.check(expr);
    if checker.errors.is_empty() {
        return Ok(ty);
    }
    // cel-go prints its issues sorted by position.
    checker.errors.sort_by_key(|(at, _)| *at);
    Err(failed(checker.errors.into_iter().map(|(_, e)| e).collect::<Vec<_>>().join("\n")))
}

/// One issue as cel-go prints it: position, message, the source line and a caret.
fn issue(src: &str, line: usize, col: usize, msg: &str) -> String {
    let mut out = format!("ERROR: <input>:{line}:{col}: {msg}");
    if let Some(snippet) = src.lines().nth(line.saturating_sub(1)) {
        let snippet = snippet.replace('\t', " ");
        let dots = col.saturating_sub(1).min(snippet.chars().count());
        out.push_str(&format!("\n | {snippet}\n | {}^", ".".repeat(dots)));
    }
    out
}

fn parse_errors(src: &str, errs: &ParseErrors) -> String {
    errs.errors
        .iter()
        .map(|e| {
            let msg = if e.msg.contains("Recursion limit") {
                "expression recursion limit exceeded: 96".to_string()
            } else if e.msg.starts_with("Syntax error") {
                e.msg.clone()
            } else {
                format!("Syntax error: {}", e.msg)
            };
            let line = usize::try_from(e.pos.0).unwrap_or(1).max(1);
            let col = usize::try_from(e.pos.1).unwrap_or(1).max(1);
            issue(src, line, col, &msg)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Static types. `Unknown` is what the checker does not work out; it passes every check.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Unknown,
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Type,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Object(Obj),
}

/// The object types of the admission environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    Request,
    Kind,
    Resource,
    UserInfo,
    Namespace,
    NamespaceMetadata,
    NamespaceSpec,
    NamespaceStatus,
    NamespaceCondition,
    Authorizer,
    ResourceCheck,
    Variables,
}

impl Obj {
    fn name(self) -> &'static str {
        match self {
            Obj::Request => "kubernetes.AdmissionRequest",
            Obj::Kind => "kubernetes.GroupVersionKind",
            Obj::Resource => "kubernetes.GroupVersionResource",
            Obj::UserInfo => "kubernetes.UserInfo",
            Obj::Namespace => "kubernetes.Namespace",
            Obj::NamespaceMetadata => "kubernetes.NamespaceMetadata",
            Obj::NamespaceSpec => "kubernetes.NamespaceSpec",
            Obj::NamespaceStatus => "kubernetes.NamespaceStatus",
            Obj::NamespaceCondition => "kubernetes.NamespaceCondition",
            Obj::Authorizer => "kubernetes.authorization.Authorizer",
            Obj::ResourceCheck => "kubernetes.authorization.ResourceCheck",
            Obj::Variables => "kubernetes.variables",
        }
    }

    /// The type of `field`; `None` when the type has no such field. (Variables are looked up
    /// by the checker.)
    fn field(self, field: &str) -> Option<Ty> {
        let strings = || Ty::List(Box::new(Ty::String));
        let string_map = || Ty::Map(Box::new(Ty::String), Box::new(Ty::String));
        Some(match (self, field) {
            (Obj::Request, "kind" | "requestKind") => Ty::Object(Obj::Kind),
            (Obj::Request, "resource" | "requestResource") => Ty::Object(Obj::Resource),
            (Obj::Request, "subResource" | "requestSubResource" | "name" | "namespace" | "operation") => Ty::String,
            (Obj::Request, "userInfo") => Ty::Object(Obj::UserInfo),
            (Obj::Request, "dryRun") => Ty::Bool,
            (Obj::Request, "options") => Ty::Dyn,
            (Obj::Kind, "group" | "version" | "kind") | (Obj::Resource, "group" | "version" | "resource") => Ty::String,
            (Obj::UserInfo, "username" | "uid") => Ty::String,
            (Obj::UserInfo, "groups") => strings(),
            (Obj::UserInfo, "extra") => Ty::Map(Box::new(Ty::String), Box::new(strings())),
            (Obj::Namespace, "metadata") => Ty::Object(Obj::NamespaceMetadata),
            (Obj::Namespace, "spec") => Ty::Object(Obj::NamespaceSpec),
            (Obj::Namespace, "status") => Ty::Object(Obj::NamespaceStatus),
            (Obj::NamespaceMetadata, "name" | "generateName" | "namespace" | "UID" | "resourceVersion") => Ty::String,
            (Obj::NamespaceMetadata, "labels" | "annotations") => string_map(),
            (Obj::NamespaceMetadata, "creationTimestamp" | "deletionTimestamp") => Ty::Timestamp,
            (Obj::NamespaceMetadata, "deletionGracePeriodSeconds" | "generation") => Ty::Int,
            (Obj::NamespaceMetadata | Obj::NamespaceSpec, "finalizers") => strings(),
            (Obj::NamespaceStatus, "conditions") => Ty::List(Box::new(Ty::Object(Obj::NamespaceCondition))),
            (Obj::NamespaceStatus, "phase") => Ty::String,
            (Obj::NamespaceCondition, "status" | "type" | "message" | "reason") => Ty::String,
            (Obj::NamespaceCondition, "lastTransitionTime") => Ty::Timestamp,
            // The authorizer's types are opaque: their use is by functions, left unchecked.
            (Obj::Authorizer | Obj::ResourceCheck, _) => Ty::Unknown,
            _ => return None,
        })
    }
}

impl Ty {
    /// cel-go's name of the type, when it is fully known.
    fn name(&self) -> Option<String> {
        Some(match self {
            Ty::Unknown => return None,
            Ty::Dyn => "dyn".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null_type".into(),
            Ty::Duration => "google.protobuf.Duration".into(),
            Ty::Timestamp => "google.protobuf.Timestamp".into(),
            Ty::Type => "type".into(),
            Ty::List(e) => format!("list({})", e.name()?),
            Ty::Map(k, v) => format!("map({}, {})", k.name()?, v.name()?),
            Ty::Object(o) => o.name().into(),
        })
    }

    fn is_concrete(&self) -> bool {
        !matches!(self, Ty::Unknown | Ty::Dyn)
    }
}

/// Type names usable as values (`type(x) == int`).
const TYPE_NAMES: &[&str] =
    &["bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string", "timestamp", "type", "uint"];

/// Namespaces of the qualified functions (`sets.contains(...)`, `format.dns1123Label()`).
const NAMESPACES: &[&str] = &["sets", "optional", "strings", "format", "ip"];

/// Every function of the 1.32 admission environment (compatibility version 1.31), with the
/// result it always has (`Unknown` where it depends on the arguments).
#[rustfmt::skip]
fn function(name: &str) -> Option<Ty> {
    Some(match name {
        "contains" | "startsWith" | "endsWith" | "matches" | "isSorted" | "isURL" | "isQuantity"
        | "isInteger" | "isGreaterThan" | "isLessThan" | "hasValue" | "isIP" | "isCIDR" | "containsIP"
        | "containsCIDR" | "isUnspecified" | "isLoopback" | "isLinkLocalMulticast" | "isLinkLocalUnicast"
        | "isGlobalUnicast" | "allowed" | "errored" | "sets.contains" | "sets.equivalent"
        | "sets.intersects" | "ip.isCanonical" | "bool" => Ty::Bool,
        "size" | "indexOf" | "lastIndexOf" | "sign" | "compareTo" | "asInteger" | "getDate" | "getDayOfMonth"
        | "getDayOfWeek" | "getDayOfYear" | "getFullYear" | "getHours" | "getMilliseconds" | "getMinutes"
        | "getMonth" | "getSeconds" | "int" | "family" | "prefixLength" => Ty::Int,
        "uint" => Ty::Uint,
        "double" | "asApproximateFloat" => Ty::Double,
        "string" | "lowerAscii" | "upperAscii" | "replace" | "substring" | "trim" | "join" | "strings.quote"
        | "charAt" | "find" | "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" | "reason"
        | "error" => Ty::String,
        "bytes" => Ty::Bytes,
        "duration" => Ty::Duration,
        "timestamp" => Ty::Timestamp,
        "dyn" => Ty::Dyn,
        "type" => Ty::Type,
        "split" | "findAll" => Ty::List(Box::new(Ty::String)),
        "getQuery" => Ty::Map(Box::new(Ty::String), Box::new(Ty::List(Box::new(Ty::String)))),
        "format" | "min" | "max" | "sum" | "optional.of" | "optional.ofNonZeroValue" | "optional.none"
        | "value" | "orValue" | "or" | "url" | "quantity" | "add" | "sub" | "ip" | "cidr" | "masked"
        | "path" | "group" | "resource" | "subresource" | "namespace" | "name" | "check"
        | "serviceAccount" | "fieldSelector" | "labelSelector" | "validate" | "format.named"
        | "format.dns1123Label" | "format.dns1123Subdomain" | "format.dns1035Label" | "format.qualifiedName"
        | "format.dns1123LabelPrefix" | "format.dns1123SubdomainPrefix" | "format.dns1035LabelPrefix"
        | "format.labelValue" | "format.uri" | "format.uuid" | "format.byte" | "format.date"
        | "format.datetime" => Ty::Unknown,
        _ => return None,
    })
}

struct Checker<'a> {
    src: &'a str,
    program: &'a Program,
    decls: &'a Declarations<'a>,
    /// Comprehension variables in scope, with their types.
    scopes: Vec<(String, Ty)>,
    /// Issues with their (line, column).
    errors: Vec<((usize, usize), String)>,
}

impl Checker<'_> {
    fn err(&mut self, id: u64, msg: &str) {
        let (line, col) = self.position(id);
        self.errors.push(((line, col), issue(self.src, line, col, msg)));
    }

    /// 1-based line and column of node `id`.
    fn position(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.program.source_info().offset_for(id) else { return (1, 1) };
        let before: String = self.src.chars().take(start as usize).collect();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// The type of a declared variable (or a type name), `None` if `name` is not declared.
    fn variable(&self, name: &str) -> Option<Ty> {
        if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return Some(t.clone());
        }
        Some(match name {
            "object" | "oldObject" => Ty::Dyn,
            "request" => Ty::Object(Obj::Request),
            "namespaceObject" => Ty::Object(Obj::Namespace),
            "params" if self.decls.params => Ty::Dyn,
            "authorizer" if self.decls.authorizer => Ty::Object(Obj::Authorizer),
            "variables" if self.decls.variables.is_some() => Ty::Object(Obj::Variables),
            n if TYPE_NAMES.contains(&n) => Ty::Type,
            _ => return None,
        })
    }

    fn check(&mut self, e: &IdedExpr) -> Ty {
        for op in [operators::LOGICAL_AND, operators::LOGICAL_OR] {
            if matches!(&e.expr, Expr::Call(c) if c.func_name == op && c.target.is_none() && c.args.len() == 2) {
                for operand in chain(e, op) {
                    self.check(operand);
                }
                return Ty::Bool;
            }
        }
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::UInt(_) => Ty::Uint,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Null => Ty::Null,
            },
            Expr::Ident(name) => self.variable(name).unwrap_or_else(|| {
                self.err(e.id, &format!("undeclared reference to '{name}' (in container '')"));
                Ty::Unknown
            }),
            Expr::Select(s) => {
                // `authorizer.requestResource` is a variable of its own.
                if s.field == "requestResource"
                    && matches!(&s.operand.expr, Expr::Ident(n) if n == "authorizer")
                    && self.decls.authorizer
                    && !self.scopes.iter().any(|(n, _)| n == "authorizer")
                {
                    return if s.test { Ty::Bool } else { Ty::Object(Obj::ResourceCheck) };
                }
                let operand = self.check(&s.operand);
                let field = self.select(e.id, &operand, &s.field);
                if s.test { Ty::Bool } else { field }
            }
            Expr::Call(c) => self.call(e.id, c),
            Expr::List(l) => {
                let elems: Vec<Ty> = l.elements.iter().map(|el| self.check(el)).collect();
                Ty::List(Box::new(join(&elems)))
            }
            Expr::Map(m) => {
                let mut keys = Vec::new();
                let mut values = Vec::new();
                for en in &m.entries {
                    if let EntryExpr::MapEntry(me) = &en.expr {
                        keys.push(self.check(&me.key));
                        values.push(self.check(&me.value));
                    }
                }
                Ty::Map(Box::new(join(&keys)), Box::new(join(&values)))
            }
            Expr::Struct(s) => {
                self.err(e.id, &format!("undeclared reference to '{}' (in container '')", s.type_name));
                Ty::Unknown
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range);
                let (first, second) = match &range {
                    Ty::List(el) => (Ty::Int, (**el).clone()),
                    Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
                    Ty::Dyn => (Ty::Dyn, Ty::Dyn),
                    _ => (Ty::Unknown, Ty::Unknown),
                };
                let vars = match &c.iter_var2 {
                    // Two-variable forms: index or key, then the element or value.
                    Some(v2) => vec![(c.iter_var.clone(), first), (v2.clone(), second)],
                    None => {
                        let elem = match &range {
                            Ty::List(el) => (**el).clone(),
                            Ty::Map(k, _) => (**k).clone(),
                            Ty::Dyn => Ty::Dyn,
                            _ => Ty::Unknown,
                        };
                        vec![(c.iter_var.clone(), elem)]
                    }
                };
                let init = self.check(&c.accu_init);
                let pushed = vars.len() + 1;
                self.scopes.extend(vars);
                self.scopes.push((c.accu_var.clone(), init.clone()));
                self.check(&c.loop_cond);
                self.check(&c.loop_step);
                let result = self.check(&c.result);
                self.scopes.truncate(self.scopes.len() - pushed);
                match init {
                    Ty::Bool | Ty::Int => Ty::Bool, // all, exists; exists_one (`@result == 1`)
                    Ty::List(_) => Ty::List(Box::new(Ty::Unknown)),
                    _ => result,
                }
            }
            Expr::Unspecified => Ty::Unknown,
        }
    }

    fn select(&mut self, id: u64, operand: &Ty, field: &str) -> Ty {
        match operand {
            Ty::Dyn => Ty::Dyn,
            Ty::Map(_, v) => (**v).clone(),
            Ty::Object(Obj::Variables) => {
                let found = self.decls.variables.and_then(|vars| vars.iter().rev().find(|(n, _)| n == field));
                match found {
                    Some((_, t)) => t.0.clone(),
                    None => {
                        self.err(id, &format!("undefined field '{field}'"));
                        Ty::Unknown
                    }
                }
            }
            Ty::Object(o) => o.field(field).unwrap_or_else(|| {
                self.err(id, &format!("undefined field '{field}'"));
                Ty::Unknown
            }),
            _ => Ty::Unknown,
        }
    }

    /// The function `c` names: `ns.f` for a call on a namespace (not a variable), else `f`.
    fn qualified(&self, c: &CallExpr) -> Option<String> {
        match c.target.as_deref() {
            Some(IdedExpr { expr: Expr::Ident(ns), .. })
                if NAMESPACES.contains(&ns.as_str()) && self.variable(ns).is_none() =>
            {
                let name = format!("{ns}.{}", c.func_name);
                function(&name).map(|_| name)
            }
            _ => None,
        }
    }

    fn call(&mut self, id: u64, c: &CallExpr) -> Ty {
        let qualified = self.qualified(c);
        let target = match (&qualified, &c.target) {
            (None, Some(t)) => Some(self.check(t)),
            _ => None,
        };
        let args: Vec<Ty> = c.args.iter().map(|a| self.check(a)).collect();
        self.literal_args(c, qualified.as_deref().unwrap_or(&c.func_name));
        if let Some(name) = &qualified {
            return function(name).unwrap_or(Ty::Unknown);
        }
        let name = c.func_name.as_str();
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Ty::Unknown);
        match name {
            operators::LOGICAL_NOT
            | operators::EQUALS
            | operators::NOT_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS
            | operators::IN
            | operators::NOT_STRICTLY_FALSE => Ty::Bool,
            operators::ADD | operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
                let (a, b) = (arg(0), arg(1));
                let same = a == b && a.is_concrete();
                match a {
                    Ty::Int | Ty::Uint | Ty::Double if same => a,
                    Ty::String | Ty::Bytes | Ty::List(_) if same && name == operators::ADD => a,
                    _ => Ty::Unknown,
                }
            }
            operators::NEGATE => match arg(0) {
                t @ (Ty::Int | Ty::Double) => t,
                _ => Ty::Unknown,
            },
            operators::CONDITIONAL => {
                let (a, b) = (arg(1), arg(2));
                if a == b && a.is_concrete() { a } else { Ty::Unknown }
            }
            operators::INDEX => match arg(0) {
                Ty::Dyn => Ty::Dyn,
                Ty::List(el) => *el,
                Ty::Map(_, v) => *v,
                _ => Ty::Unknown,
            },
            operators::OPT_INDEX | operators::OPT_SELECT => Ty::Unknown,
            // `format` on a string, not a namespace: a string.
            "format" if target.as_ref().is_some_and(|t| *t == Ty::String) => Ty::String,
            _ => function(name).unwrap_or_else(|| {
                self.err(id, &format!("undeclared reference to '{name}' (in container '')"));
                Ty::Unknown
            }),
        }
    }

    /// cel-go's literal validators (Kubernetes 1.29+): `duration`, `timestamp` and `matches`
    /// literals that would fail.
    fn literal_args(&mut self, c: &CallExpr, name: &str) {
        let lit = match (name, c.target.as_deref(), c.args.as_slice()) {
            ("duration" | "timestamp", None, [arg]) => arg,
            ("matches", Some(_), [arg]) | ("matches", None, [_, arg]) => arg,
            _ => return,
        };
        let Expr::Literal(LiteralValue::String(s)) = &lit.expr else { return };
        let ok = match name {
            "duration" => time::go_duration(s.inner()).is_some(),
            "timestamp" => time::parse_timestamp(s.inner()).is_some(),
            _ => go_regex(s.inner()).is_ok(),
        };
        if !ok {
            let what =
                if name == "timestamp" { "invalid timestamp".to_string() } else { format!("invalid {name} argument") };
            self.err(lit.id, &what);
        }
    }
}

/// The type of the elements of a literal: theirs when they all agree, `dyn` for none.
fn join(types: &[Ty]) -> Ty {
    match types.split_first() {
        None => Ty::Dyn,
        Some((first, rest)) if rest.iter().all(|t| t == first) => first.clone(),
        Some(_) => Ty::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ok: <type>` (`?` when not worked out), or the failure's text.
    fn check(src: &str, decls: Declarations<'_>, expect: Expect) -> String {
        match check_admission_expression(src, &decls, expect) {
            Ok(t) => format!("ok: {}", t.name().unwrap_or_else(|| "?".into())),
            Err(e) => e.to_string(),
        }
    }

    fn webhook() -> Declarations<'static> {
        Declarations { params: false, authorizer: true, variables: None }
    }

    #[test]
    fn declarations_and_fields() {
        assert_eq!(
            check("object.metadata.name == 'a' && request.operation == 'CREATE'", webhook(), Expect::Bool),
            "ok: bool"
        );
        assert_eq!(
            check("params.x == 1", webhook(), Expect::Bool),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.x == 1\n | ^"
        );
        assert_eq!(check("params.x == 1", Declarations { params: true, ..webhook() }, Expect::Bool), "ok: bool");
        assert_eq!(
            check("request.nope == 'a'", webhook(), Expect::Bool),
            "compilation failed: ERROR: <input>:1:8: undefined field 'nope'\n | request.nope == 'a'\n | .......^"
        );
        assert!(check("authorizer.requestResource.check('get').allowed()", webhook(), Expect::Bool).starts_with("ok"));
        let no_authorizer = Declarations { authorizer: false, ..webhook() };
        assert!(
            check("authorizer.path('/x').check('get').reason()", no_authorizer, Expect::String)
                .contains("undeclared reference to 'authorizer'")
        );
        assert_eq!(check("namespaceObject.metadata.labels['env'] == 'prod'", webhook(), Expect::Bool), "ok: bool");
        assert_eq!(check("request.userInfo.groups", webhook(), Expect::Any), "ok: list(string)");
        assert_eq!(
            check("object.spec.containers.all(c, c.image.startsWith('r/'))", webhook(), Expect::Bool),
            "ok: bool"
        );
        assert_eq!(
            check("sets.contains([1], [1]) && format.dns1123Label().validate('a').hasValue()", webhook(), Expect::Bool),
            "ok: bool"
        );
    }

    #[test]
    fn result_types() {
        assert_eq!(check("object.spec.paused", webhook(), Expect::Bool), "must evaluate to bool but got dyn");
        assert_eq!(check("1", webhook(), Expect::Bool), "must evaluate to bool but got int");
        assert_eq!(check("'a'", webhook(), Expect::Bool), "must evaluate to bool but got string");
        assert_eq!(
            check("1", webhook(), Expect::StringOrNull),
            "must evaluate to one of [string null_type] but got int"
        );
        assert_eq!(check("null", webhook(), Expect::StringOrNull), "ok: null_type");
        assert_eq!(check("{'a': 1}", webhook(), Expect::String), "must evaluate to string but got map(string, int)");
        assert_eq!(check("'n: ' + string(object.spec.replicas)", webhook(), Expect::String), "ok: string");
        // not worked out: passes
        assert_eq!(check("object.a + object.b", webhook(), Expect::Bool), "ok: ?");
    }

    #[test]
    fn variables_compose() {
        assert!(check("variables.x > 1", webhook(), Expect::Bool).contains("undeclared reference to 'variables'"));
        let x = check_admission_expression("object.spec.replicas > 1", &webhook(), Expect::Any).expect("compiles");
        let vars = vec![("x".to_string(), x)];
        let decls = Declarations { variables: Some(&vars), ..webhook() };
        assert_eq!(check("variables.x", decls, Expect::Bool), "ok: bool");
        assert_eq!(
            check("variables.y", decls, Expect::Bool),
            "compilation failed: ERROR: <input>:1:10: undefined field 'y'\n | variables.y\n | .........^"
        );
    }

    #[test]
    fn syntax_and_functions() {
        assert!(check("object.x ==", webhook(), Expect::Bool).starts_with("compilation failed: ERROR: <input>:1:"));
        assert_eq!(
            check("object.x.frob()", webhook(), Expect::Bool),
            "compilation failed: ERROR: <input>:1:14: undeclared reference to 'frob' (in container '')\n | object.x.frob()\n | .............^"
        );
        assert!(
            check("duration('1x') > duration('1s')", webhook(), Expect::Bool).contains("invalid duration argument")
        );
        // issues come sorted by position
        let both = check("b(1) || a", webhook(), Expect::Bool);
        assert!(both.find("'b'") < both.find("'a'"), "{both}");
    }
}
