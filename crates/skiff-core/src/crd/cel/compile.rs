//! Compiling one expression: parse with the shared environment, check what the crate's parser
//! does not (cel-go's checker rejects these when the CRD is written): identifiers other than
//! `self`/`oldSelf` and comprehension variables, unknown functions, fields the schema does not
//! declare, results of the wrong type, bad `duration`/`timestamp`/`matches` literals, and too
//! long or too deep expressions; then rewrite it for evaluation (`rewrite`). Errors are worded
//! and positioned as cel-go's (`ERROR: <input>:1:16: ...` with the source line and a caret).

use super::escape::escape;
use super::library::{regex::go_regex, time};
use super::rewrite::{self, NAMESPACES, Rewriter, qualified_name};
use super::{MAX_AST_DEPTH, MAX_RULE_SIZE, env};
use crate::crd::Schema;
use cel::common::ast::{CallExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::{ParseErrors, Program};

/// A compiled expression, ready to evaluate.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub expr: IdedExpr,
    pub uses_old_self: bool,
}

/// What an expression must evaluate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Bool,
    String,
}

/// Why an expression does not compile: cel-go's error text, or a result of the wrong type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum CompileError {
    /// Parse and check errors, formatted as cel-go's `Issues.String()`.
    #[error("{0}")]
    Invalid(String),
    /// The result has a type other than the one wanted.
    #[error("wrong result type")]
    WrongType,
}

/// The functions of Kubernetes 1.32's environment that rules may call (macros are expanded by
/// the parser; operators are listed apart).
const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "duration",
    "timestamp",
    "dyn",
    "type",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "optional.of",
    "optional.ofNonZeroValue",
    "optional.none",
    "hasValue",
    "value",
    "orValue",
    "or",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "strings.quote",
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "quantity",
    "isQuantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
];

const OPERATORS: &[&str] = &[
    operators::CONDITIONAL,
    operators::LOGICAL_AND,
    operators::LOGICAL_OR,
    operators::LOGICAL_NOT,
    operators::SUBSTRACT,
    operators::ADD,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
    operators::EQUALS,
    operators::NOT_EQUALS,
    operators::GREATER_EQUALS,
    operators::LESS_EQUALS,
    operators::GREATER,
    operators::LESS,
    operators::NEGATE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    operators::NOT_STRICTLY_FALSE,
    operators::IN,
];

/// Type names an expression may use as values (`type(x) == int`).
const TYPE_NAMES: &[&str] =
    &["bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string", "timestamp", "type", "uint"];

/// Compile `src`, evaluated at a node of schema `node` (`root`: a resource root), whose result
/// must be `want`. `old_self` says whether `oldSelf` is declared.
pub(super) fn compile(
    src: &str,
    node: &Schema,
    root: bool,
    want: Want,
    old_self: bool,
) -> Result<Compiled, CompileError> {
    let size = src.chars().count();
    if size > MAX_RULE_SIZE {
        return Err(CompileError::Invalid(format!(
            "ERROR: <input>:-1:0: expression code point size exceeds limit: size: {size}, limit {MAX_RULE_SIZE}"
        )));
    }
    let program = env::env().compile(src).map_err(|e| CompileError::Invalid(parse_errors(src, &e)))?;
    let expr = program.expression();
    if rewrite::depth(expr, MAX_AST_DEPTH) > MAX_AST_DEPTH {
        return Err(CompileError::Invalid(format!(
            "ERROR: <input>:-1:0: expression recursion limit exceeded: {MAX_AST_DEPTH}"
        )));
    }
    let mut checker =
        Checker { src, program: &program, scopes: Vec::new(), errors: Vec::new(), uses_old_self: false, old_self };
    let ty = checker.check(expr, Some(Ty::Node(node, root)));
    if !checker.errors.is_empty() {
        return Err(CompileError::Invalid(checker.errors.join("\n")));
    }
    let ok = match (want, ty.kind()) {
        (_, Kind::Dyn) => true,
        (Want::Bool, k) => k == Kind::Bool,
        (Want::String, k) => k == Kind::String,
    };
    if !ok {
        return Err(CompileError::WrongType);
    }
    let expr = Rewriter::new().rewrite(expr.clone());
    Ok(Compiled { expr, uses_old_self: checker.uses_old_self })
}

/// One error as cel-go prints it: position, message, the source line and a caret.
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
            // The crate's recursion error is a debug dump; say it as cel-go does.
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

/// The static type of a subexpression, as far as we can tell.
#[derive(Clone, Copy)]
enum Ty<'s> {
    Dyn,
    Bool,
    Int,
    Double,
    String,
    List,
    Map,
    /// The value at a schema node (`root`: a resource root, whose metadata is restricted).
    Node(&'s Schema, bool),
    /// The `metadata` of a resource root: only `name` and `generateName`.
    RootMeta,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dyn,
    Bool,
    Int,
    Double,
    String,
    Other,
}

impl Ty<'_> {
    fn kind(self) -> Kind {
        match self {
            Ty::Dyn => Kind::Dyn,
            Ty::Bool => Kind::Bool,
            Ty::Int => Kind::Int,
            Ty::Double => Kind::Double,
            Ty::String => Kind::String,
            Ty::List | Ty::Map | Ty::RootMeta => Kind::Other,
            Ty::Node(s, _) => {
                if s.x_int_or_string {
                    return Kind::Dyn;
                }
                match (s.type_.as_str(), s.format.as_str()) {
                    ("boolean", _) => Kind::Bool,
                    ("integer", _) => Kind::Int,
                    ("number", _) => Kind::Double,
                    ("string", "byte" | "date" | "date-time" | "datetime" | "duration") => Kind::Other,
                    ("string", _) => Kind::String,
                    ("array" | "object", _) => Kind::Other,
                    _ => Kind::Dyn,
                }
            }
        }
    }
}

struct Checker<'a, 's> {
    src: &'a str,
    program: &'a Program,
    /// Comprehension variables in scope, with their types.
    scopes: Vec<(String, Ty<'s>)>,
    errors: Vec<String>,
    uses_old_self: bool,
    old_self: bool,
}

impl<'s> Checker<'_, 's> {
    fn err(&mut self, id: u64, msg: &str) {
        let (line, col) = self.position(id);
        self.errors.push(issue(self.src, line, col, msg));
    }

    /// 1-based line and column of node `id`.
    fn position(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.program.source_info().offset_for(id) else { return (1, 1) };
        let before: String = self.src.chars().take(start as usize).collect();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// Checks `e`; `self_ty` is the type of `self` (passed only at the root).
    fn check(&mut self, e: &IdedExpr, self_ty: Option<Ty<'s>>) -> Ty<'s> {
        if let Some(t) = self_ty {
            self.scopes.push(("self".into(), t));
            if self.old_self {
                self.scopes.push(("oldSelf".into(), t));
            }
            let ty = self.check(e, None);
            self.scopes.clear();
            return ty;
        }
        for op in [operators::LOGICAL_AND, operators::LOGICAL_OR] {
            if matches!(&e.expr, Expr::Call(c) if c.func_name == op && c.target.is_none() && c.args.len() == 2) {
                for operand in rewrite::chain(e, op) {
                    self.check(operand, None);
                }
                return Ty::Bool;
            }
        }
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::String(_) => Ty::String,
                _ => Ty::Dyn,
            },
            Expr::Ident(name) => {
                if name == "oldSelf" && self.old_self {
                    self.uses_old_self = true;
                }
                if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
                    return *t;
                }
                if !TYPE_NAMES.contains(&name.as_str()) {
                    self.err(e.id, &format!("undeclared reference to '{name}' (in container '')"));
                }
                Ty::Dyn
            }
            Expr::Select(s) => {
                let operand = self.check(&s.operand, None);
                let field = self.select(e.id, operand, &s.field);
                if s.test { Ty::Bool } else { field }
            }
            Expr::Call(c) => self.call(e.id, c),
            Expr::List(l) => {
                for el in &l.elements {
                    self.check(el, None);
                }
                Ty::List
            }
            Expr::Map(m) => {
                for en in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &en.expr {
                        self.check(&me.key, None);
                        self.check(&me.value, None);
                    }
                }
                Ty::Map
            }
            Expr::Struct(s) => {
                self.err(e.id, &format!("undeclared reference to '{}' (in container '')", s.type_name));
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.check(&c.iter_range, None);
                let elem = match range {
                    Ty::Node(s, _) if s.type_ == "array" => {
                        s.items_schema().map_or(Ty::Dyn, |i| Ty::Node(i, i.x_embedded_resource))
                    }
                    Ty::Node(s, _) if s.type_ == "object" => Ty::String,
                    _ => Ty::Dyn,
                };
                let init = self.check(&c.accu_init, None);
                self.scopes.push((c.iter_var.clone(), elem));
                self.scopes.push((c.accu_var.clone(), init));
                self.check(&c.loop_cond, None);
                self.check(&c.loop_step, None);
                let result = self.check(&c.result, None);
                self.scopes.pop();
                self.scopes.pop();
                match init {
                    Ty::Int => Ty::Bool, // exists_one: `@result == 1`
                    _ => result,
                }
            }
            Expr::Unspecified => Ty::Dyn,
        }
    }

    fn select(&mut self, id: u64, operand: Ty<'s>, field: &str) -> Ty<'s> {
        match operand {
            Ty::RootMeta => {
                if field == "name" || field == "generateName" {
                    Ty::String
                } else {
                    self.err(id, &format!("undefined field '{field}'"));
                    Ty::Dyn
                }
            }
            Ty::Node(s, root) => {
                let resource = root || s.x_embedded_resource;
                if resource && (field == "apiVersion" || field == "kind") {
                    return Ty::String;
                }
                if resource && field == "metadata" {
                    return Ty::RootMeta;
                }
                if s.type_ != "object" {
                    return Ty::Dyn;
                }
                if s.properties.is_empty()
                    && let Some(extra) = s.additional_schema()
                {
                    return Ty::Node(extra, extra.x_embedded_resource);
                }
                let found = s
                    .properties
                    .iter()
                    .find(|(k, p)| escape(k).as_deref() == Some(field) && super::value::has_decl_type(p));
                match found {
                    Some((_, p)) => Ty::Node(p, p.x_embedded_resource),
                    None => {
                        self.err(id, &format!("undefined field '{field}'"));
                        Ty::Dyn
                    }
                }
            }
            _ => Ty::Dyn,
        }
    }

    fn call(&mut self, id: u64, c: &CallExpr) -> Ty<'s> {
        let qualified = qualified_name(c);
        if let (None, Some(t)) = (&qualified, &c.target) {
            self.check(t, None);
        }
        let args: Vec<Ty<'s>> = c.args.iter().map(|a| self.check(a, None)).collect();
        let name = qualified.clone().unwrap_or_else(|| c.func_name.clone());
        if !OPERATORS.contains(&name.as_str()) && !FUNCTIONS.contains(&name.as_str()) {
            let shown = match &c.target {
                Some(t) if matches!(&t.expr, Expr::Ident(ns) if NAMESPACES.contains(&ns.as_str())) => name.clone(),
                _ => c.func_name.clone(),
            };
            self.err(id, &format!("undeclared reference to '{shown}' (in container '')"));
            return Ty::Dyn;
        }
        self.literal_args(c, &name);
        match name.as_str() {
            operators::INDEX => match args.first() {
                Some(Ty::Node(s, _)) if s.type_ == "array" => {
                    s.items_schema().map_or(Ty::Dyn, |i| Ty::Node(i, i.x_embedded_resource))
                }
                Some(Ty::Node(s, _)) if s.type_ == "object" && s.properties.is_empty() => {
                    s.additional_schema().map_or(Ty::Dyn, |i| Ty::Node(i, i.x_embedded_resource))
                }
                _ => Ty::Dyn,
            },
            operators::ADD | operators::SUBSTRACT | operators::MULTIPLY | operators::DIVIDE | operators::MODULO => {
                match (args.first().map(|a| a.kind()), args.get(1).map(|a| a.kind())) {
                    (Some(Kind::Int), Some(Kind::Int)) => Ty::Int,
                    (Some(Kind::Double), Some(Kind::Double)) => Ty::Double,
                    (Some(Kind::String), Some(Kind::String)) if name == operators::ADD => Ty::String,
                    _ => Ty::Dyn,
                }
            }
            operators::NEGATE => match args.first().map(|a| a.kind()) {
                Some(Kind::Int) => Ty::Int,
                Some(Kind::Double) => Ty::Double,
                _ => Ty::Dyn,
            },
            operators::CONDITIONAL => match (args.get(1), args.get(2)) {
                (Some(a), Some(b)) if a.kind() == b.kind() && a.kind() != Kind::Other => *a,
                _ => Ty::Dyn,
            },
            operators::LOGICAL_NOT
            | operators::EQUALS
            | operators::NOT_EQUALS
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS
            | operators::IN
            | operators::NOT_STRICTLY_FALSE
            | "contains"
            | "startsWith"
            | "endsWith"
            | "matches"
            | "isSorted"
            | "sets.contains"
            | "sets.equivalent"
            | "sets.intersects"
            | "isURL"
            | "isQuantity"
            | "isInteger"
            | "isGreaterThan"
            | "isLessThan"
            | "hasValue" => Ty::Bool,
            "size" | "indexOf" | "lastIndexOf" | "int" | "sign" | "compareTo" | "asInteger" | "getDate"
            | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getFullYear" | "getHours" | "getMilliseconds"
            | "getMinutes" | "getMonth" | "getSeconds" => Ty::Int,
            "string" | "lowerAscii" | "upperAscii" | "replace" | "substring" | "trim" | "join" | "format"
            | "strings.quote" | "charAt" | "find" | "getScheme" | "getHost" | "getHostname" | "getPort"
            | "getEscapedPath" => Ty::String,
            "double" | "asApproximateFloat" => Ty::Double,
            "split" | "findAll" => Ty::List,
            "getQuery" => Ty::Map,
            _ => Ty::Dyn,
        }
    }

    /// Kubernetes 1.29+ rejects `duration`, `timestamp` and `matches` literals that would fail.
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
