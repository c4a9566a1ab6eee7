//! Evaluating the compiled rules on a custom resource, as apiextensions' CEL `Validator` walks
//! it: at every node holding rules, `self` is the node's value (null values are skipped), then
//! `allOf` entries, array items and object properties or map values are visited. `oldSelf`
//! follows the old object through properties, map keys and the keys of `list-type: map`
//! items; a rule using it is skipped where no old value correlates, unless it sets
//! `optionalOldSelf`. A failed rule that does not use `oldSelf`, on a value unchanged from the
//! old object (or inside an unchanged one), is only a warning (`CRDValidationRatcheting`).

use super::budget::{self, COST_EXCEEDED};
use super::compile::{Compiled, Want, compile};
use super::errors::{EvalError, runtime_message};
use super::rule::{RuleSpec, field_path};
use super::value::{CelVal, has_decl_type, to_cel};
use super::{Limits, env};
use crate::crd::Schema;
use crate::field::{ErrorList, FieldError, Path, go_quote};
use cel::common::types::{CelBool, CelOptional, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Value as CelValue};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Instant;

/// Every rule of one schema tree, compiled.
#[derive(Debug, Default)]
pub struct Rules {
    root: Option<Node>,
}

/// The rules of one schema node and of the nodes below it that have some.
#[derive(Debug, Default)]
struct Node {
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    all_of: Vec<Node>,
}

#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    /// `None` when it does not compile: such a rule was refused when the CRD was written.
    program: Option<Compiled>,
    message: Option<Compiled>,
    /// `fieldPath` as the path suffix it names.
    field_path: Option<String>,
}

/// What validating an object found: errors, and the errors ratcheting turned into warnings.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub errors: ErrorList,
    pub warnings: Vec<String>,
}

/// Compile every rule of `schema`, once per CRD version.
pub fn compile_rules(schema: &Schema) -> Rules {
    let root = super::on_big_stack(super::COMPILE_STACK, || node(schema, schema, true));
    Rules { root }
}

fn node(validation: &Schema, at: &Schema, root: bool) -> Option<Node> {
    let rules = RuleSpec::list(&validation.x_validations)
        .into_iter()
        .map(|spec| {
            let program = compile(&spec.rule, at, root, Want::Bool, true).ok();
            let message = (!spec.message_expression.trim().is_empty())
                .then(|| compile(&spec.message_expression, at, root, Want::String, true).ok())
                .flatten();
            let field_path = (!spec.field_path.is_empty()).then(|| field_path(&spec.field_path, at).ok()).flatten();
            Rule { spec, program, message, field_path }
        })
        .collect();
    let items = match (validation.items_schema(), at.items_schema()) {
        (Some(v), Some(a)) => node(v, a, a.x_embedded_resource).map(Box::new),
        _ => None,
    };
    let additional = match (validation.additional_schema(), at.additional_schema()) {
        (Some(v), Some(a)) => node(v, a, a.x_embedded_resource).map(Box::new),
        _ => None,
    };
    let properties = validation
        .properties
        .iter()
        .filter_map(|(k, v)| {
            let a = at.property(k).filter(|a| has_decl_type(a))?;
            Some((k.clone(), node(v, a, a.x_embedded_resource)?))
        })
        .collect();
    let all_of = validation.all_of.iter().filter_map(|v| node(v, at, root)).collect();
    let n = Node { rules, properties, items, additional, all_of };
    let empty = n.rules.is_empty()
        && n.properties.is_empty()
        && n.items.is_none()
        && n.additional.is_none()
        && n.all_of.is_empty();
    (!empty).then_some(n)
}

impl Rules {
    /// Whether there is any rule at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The errors of every rule on `obj` (`old`: the object before an update), with
    /// upstream's limits. Errors that ratcheting turns into warnings are left out.
    pub fn validate(&self, schema: &Schema, obj: &Value, old: Option<&Value>) -> ErrorList {
        self.evaluate(schema, obj, old, &Limits::default()).errors
    }

    /// Validate with explicit limits, keeping the ratcheted errors as warnings.
    pub fn evaluate(&self, schema: &Schema, obj: &Value, old: Option<&Value>, limits: &Limits) -> Outcome {
        let Some(root) = &self.root else { return Outcome::default() };
        super::on_big_stack(super::EVAL_STACK, || {
            let mut walk = Walk {
                out: Outcome::default(),
                remaining: limits.per_object,
                per_call: limits.per_call,
                deadline: Instant::now() + limits.per_object_time,
                per_call_time: limits.per_call_time,
                stopped: false,
            };
            let anchor = old.map(|o| (obj, o));
            walk.node(root, schema, true, obj, old, anchor, &Path::default());
            walk.out
        })
    }
}

struct Walk {
    out: Outcome,
    remaining: i64,
    per_call: i64,
    deadline: Instant,
    per_call_time: std::time::Duration,
    stopped: bool,
}

/// The variables of one evaluation, borrowed rather than copied into the context.
struct Vars<'a, 'v> {
    this: &'a (dyn Val + 'v),
    old: Option<&'a (dyn Val + 'v)>,
}

impl VariableResolver for Vars<'_, '_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        match name {
            "self" => Some(CowVal::Borrowed(self.this)),
            "oldSelf" => self.old.map(CowVal::Borrowed),
            _ => None,
        }
    }
}

/// The path errors are reported at: the root is Go's nil path.
fn shown(path: &Path) -> Path {
    if path.as_str().is_empty() { Path::new("<nil>") } else { path.clone() }
}

impl Walk {
    /// `anchor`: the nearest correlated (new, old) pair at or above this node, for ratcheting.
    #[allow(clippy::too_many_arguments)]
    fn node<'a>(
        &mut self,
        n: &Node,
        s: &Schema,
        root: bool,
        obj: &'a Value,
        old: Option<&'a Value>,
        anchor: Option<(&'a Value, &'a Value)>,
        path: &Path,
    ) {
        if self.stopped || obj.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        let anchor = old.map(|o| (obj, o)).or(anchor);
        self.rules(n, s, root, obj, old, anchor, path);
        for a in &n.all_of {
            self.node(a, s, root, obj, old, anchor, path);
        }
        match obj {
            Value::Array(items) => {
                let (Some(items_node), Some(items_schema)) = (&n.items, s.items_schema()) else { return };
                let olds = correlate_list(s, old);
                for (i, item) in items.iter().enumerate() {
                    let old_item = olds.as_ref().and_then(|m| m.get(&list_key(s, item)).copied());
                    let at = path.index(i);
                    self.node(items_node, items_schema, items_schema.x_embedded_resource, item, old_item, anchor, &at);
                }
            }
            Value::Object(map) => {
                let old_map = old.and_then(Value::as_object);
                if let (Some(extra_node), Some(extra)) = (&n.additional, s.additional_schema()) {
                    for (k, v) in map {
                        let at = path.key(k);
                        let o = old_map.and_then(|m| m.get(k));
                        self.node(extra_node, extra, extra.x_embedded_resource, v, o, anchor, &at);
                    }
                }
                for (k, v) in map {
                    let Some((_, pn)) = n.properties.iter().find(|(name, _)| name == k) else { continue };
                    let Some(ps) = s.property(k) else { continue };
                    let o = old_map.and_then(|m| m.get(k));
                    self.node(pn, ps, ps.x_embedded_resource, v, o, anchor, &path.child(k));
                }
            }
            _ => {}
        }
    }

    fn stop(&mut self, err: FieldError) {
        self.out.errors.push(err);
        self.stopped = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn rules<'a>(
        &mut self,
        n: &Node,
        s: &Schema,
        root: bool,
        obj: &'a Value,
        old: Option<&'a Value>,
        anchor: Option<(&'a Value, &'a Value)>,
        path: &Path,
    ) {
        if n.rules.iter().all(|r| r.program.is_none()) {
            return;
        }
        let ty = if root { "object".to_string() } else { s.type_.clone() };
        let at = shown(path);
        if self.remaining <= 0 {
            return self.stop(out_of_budget(&at, &ty));
        }
        let this = match to_cel(obj, s, root) {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => return self.out.errors.push(FieldError::invalid(&at, ty, e.to_string())),
        };
        let needs_old = n.rules.iter().any(|r| r.program.as_ref().is_some_and(|p| p.uses_old_self));
        let old_val: Option<CelVal<'a>> = match old {
            Some(o) if needs_old => to_cel(o, s, root).ok().flatten(),
            _ => None,
        };
        for rule in &n.rules {
            let Some(program) = &rule.program else { continue };
            let optional = rule.spec.optional_old_self == Some(true);
            if program.uses_old_self && old_val.is_none() && !optional {
                continue;
            }
            // `optionalOldSelf` rules see an optional; the others the value itself.
            let optional_old: Option<CelVal<'a>> = optional.then(|| {
                Box::new(match &old_val {
                    Some(o) => CelOptional::of(o.clone()),
                    None => CelOptional::none(),
                }) as CelVal<'a>
            });
            let vars = Vars { this: this.as_ref(), old: optional_old.as_deref().or(old_val.as_deref()) };
            let read = |v: &dyn Val| v.downcast_ref::<CelBool>().map(|b| *b.inner());
            let (result, limit_binds) = self.run(&program.expr, &vars, read);
            let result = match result {
                Run::Done(r) => r,
                Run::Exceeded => {
                    return self.stop(if limit_binds {
                        out_of_budget(&at, &ty)
                    } else {
                        FieldError::invalid(
                            &at,
                            ty,
                            format!(
                                "'{COST_EXCEEDED}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                                rule.spec.error_string()
                            ),
                        )
                    });
                }
            };
            match result {
                Ok(Some(true)) => continue,
                Ok(Some(false)) => {}
                Ok(None) => {
                    self.out.errors.push(FieldError::invalid(&at, ty.clone(), no_overload(rule)));
                    continue;
                }
                Err(EvalError(msg)) => {
                    let detail = if msg.starts_with("no such overload") {
                        no_overload(rule)
                    } else {
                        format!("{msg} evaluating rule: {}", rule.spec.error_string())
                    };
                    self.out.errors.push(FieldError::invalid(&at, ty.clone(), detail));
                    continue;
                }
            }
            let failed_at = match &rule.field_path {
                Some(fp) => path.child(fp),
                None => path.clone(),
            };
            let failed_at = shown(&failed_at);
            let mut detail = rule.spec.message_or_default();
            if let Some(message) = &rule.message {
                match self.message(message, &vars) {
                    Message::Text(text) => detail = text,
                    Message::Fallback => {}
                    Message::Stop(why) => {
                        let why = match why {
                            StopWhy::Budget => "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run".to_string(),
                            StopWhy::CallLimit => format!(
                                "no further validation rules will be run due to call cost exceeds limit for messageExpression: {}",
                                go_quote(&rule.spec.message_expression)
                            ),
                        };
                        return self.stop(FieldError::invalid(&failed_at, ty, why));
                    }
                }
            }
            let err = match rule.spec.reason.as_deref() {
                Some("FieldValueForbidden") => FieldError::forbidden(&failed_at, detail),
                Some("FieldValueRequired") => FieldError::required(&failed_at, detail),
                Some("FieldValueDuplicate") => FieldError::duplicate(&failed_at, ty.clone()),
                _ => FieldError::invalid(&failed_at, ty.clone(), detail),
            };
            if !program.uses_old_self && anchor.is_some_and(|(new, old)| new == old) {
                self.out.warnings.push(err.to_string());
            } else {
                self.out.errors.push(err);
            }
        }
    }

    /// Evaluate one compiled expression within the budget, reading the result with `read`.
    /// The flag says whether the object's remaining budget, rather than the per-call limit,
    /// bounded it.
    fn run<T>(
        &mut self,
        expr: &cel::IdedExpr,
        vars: &Vars<'_, '_>,
        read: impl FnOnce(&dyn Val) -> T,
    ) -> (Run<T>, bool) {
        let limit = self.per_call.min(self.remaining);
        let deadline = (Instant::now() + self.per_call_time).min(self.deadline);
        let mut ctx = Context::with_env(env::env());
        ctx.set_variable_resolver(vars);
        let (result, spent) = budget::metered(limit, deadline, || {
            CelValue::resolve_val(expr, &ctx).map(|v| read(v.as_ref())).map_err(|e| EvalError(runtime_message(&e)))
        });
        self.remaining -= spent.units;
        let binds = limit < self.per_call || Instant::now() >= self.deadline;
        if spent.exceeded {
            self.remaining = self.remaining.min(0);
            return (Run::Exceeded, binds);
        }
        (Run::Done(result), binds)
    }

    fn message(&mut self, message: &Compiled, vars: &Vars<'_, '_>) -> Message {
        let read = |v: &dyn Val| v.downcast_ref::<CelString>().map(|s| s.inner().trim().to_string());
        let (result, binds) = self.run(&message.expr, vars, read);
        let result = match result {
            Run::Exceeded if binds => return Message::Stop(StopWhy::Budget),
            Run::Exceeded => return Message::Stop(StopWhy::CallLimit),
            Run::Done(r) => r,
        };
        let Ok(Some(text)) = result else { return Message::Fallback };
        if text.is_empty() || text.len() > super::MAX_MESSAGE_BYTES || text.contains('\n') {
            return Message::Fallback;
        }
        Message::Text(text)
    }
}

enum Run<T> {
    Done(Result<T, EvalError>),
    Exceeded,
}

enum Message {
    Text(String),
    Fallback,
    Stop(StopWhy),
}

enum StopWhy {
    Budget,
    CallLimit,
}

fn out_of_budget(at: &Path, ty: &str) -> FieldError {
    FieldError::invalid(
        at,
        ty,
        "validation failed due to running out of cost budget, no further validation rules will be run",
    )
}

fn no_overload(rule: &Rule) -> String {
    format!(
        "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
        rule.spec.error_string()
    )
}

/// The key of a `list-type: map` item: its key fields' values.
fn list_key(s: &Schema, item: &Value) -> String {
    let values: Vec<Option<&Value>> = s.x_list_map_keys.iter().map(|k| item.get(k)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

/// The old items of a `list-type: map` by key; `None` for other lists, which do not correlate.
fn correlate_list<'a>(s: &Schema, old: Option<&'a Value>) -> Option<HashMap<String, &'a Value>> {
    if s.x_list_type.as_deref() != Some("map") {
        return None;
    }
    let items = old?.as_array()?;
    Some(items.iter().filter(|i| i.is_object()).map(|i| (list_key(s, i), i)).collect())
}
