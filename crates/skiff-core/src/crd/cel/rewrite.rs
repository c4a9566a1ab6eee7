//! The AST as compiled for evaluation: chains of `&&`/`||` rebuilt balanced (as cel-go's parser
//! builds them, so long chains cost no stack), the budget hooks of `budget` inserted, and the
//! calls we implement ourselves renamed to internal names no rule can spell (`@matches` with
//! Go's regex syntax and a cache, `@replace` bounded by the budget). Qualified calls such as
//! `sets.contains(a, b)` become plain global calls.

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, MapExpr, operators};

/// Functions that are constant-time on lists and maps: their arguments are charged as strings.
const CONST_TIME: [&str; 9] =
    ["size", "type", "dyn", "optional.of", "optional.ofNonZeroValue", "hasValue", "value", "orValue", "or"];

/// Operators that do constant work (or none) beyond their operands.
const UNCHARGED: [&str; 11] = [
    operators::CONDITIONAL,
    operators::LOGICAL_NOT,
    operators::NEGATE,
    operators::INDEX,
    operators::OPT_INDEX,
    operators::OPT_SELECT,
    operators::NOT_STRICTLY_FALSE,
    operators::SUBSTRACT,
    operators::MULTIPLY,
    operators::DIVIDE,
    operators::MODULO,
];

/// Namespaces of the qualified global functions (`sets.contains`, `optional.none`, ...).
pub(super) const NAMESPACES: [&str; 3] = ["sets", "optional", "strings"];

/// The function a call names: `ns.f` for a call on a namespace identifier, else its name.
pub(super) fn qualified_name(call: &CallExpr) -> Option<String> {
    match call.target.as_deref() {
        Some(IdedExpr { expr: Expr::Ident(ns), .. }) if NAMESPACES.contains(&ns.as_str()) => {
            Some(format!("{ns}.{}", call.func_name))
        }
        _ => None,
    }
}

/// The operands of a chain of `op` (`&&` or `||`), left to right, found without recursion.
pub(super) fn chain<'e>(e: &'e IdedExpr, op: &str) -> Vec<&'e IdedExpr> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.expr {
            Expr::Call(c) if c.func_name == op && c.target.is_none() && c.args.len() == 2 => {
                stack.push(&c.args[1]);
                stack.push(&c.args[0]);
            }
            _ => out.push(e),
        }
    }
    out
}

fn logical_op(e: &IdedExpr) -> Option<&'static str> {
    match &e.expr {
        Expr::Call(c) if c.target.is_none() && c.args.len() == 2 => {
            [operators::LOGICAL_AND, operators::LOGICAL_OR].into_iter().find(|op| c.func_name == *op)
        }
        _ => None,
    }
}

/// The depth of `e` with logical chains counted balanced, or `limit + 1` once past `limit`
/// (so the walk itself never goes deeper than `limit`).
pub(super) fn depth(e: &IdedExpr, limit: usize) -> usize {
    if limit == 0 {
        return 1;
    }
    let below = |e: &IdedExpr| depth(e, limit - 1);
    let children: usize = if let Some(op) = logical_op(e) {
        let operands = chain(e, op);
        let levels = usize::BITS - (operands.len().saturating_sub(1)).leading_zeros();
        let deepest = operands.iter().map(|o| depth(o, limit.saturating_sub(levels as usize))).max().unwrap_or(0);
        return (deepest + levels as usize).min(limit + 1);
    } else {
        match &e.expr {
            Expr::Call(c) => c.target.iter().map(|t| below(t)).chain(c.args.iter().map(below)).max().unwrap_or(0),
            Expr::Comprehension(c) => [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .map(below)
                .max()
                .unwrap_or(0),
            Expr::List(l) => l.elements.iter().map(below).max().unwrap_or(0),
            Expr::Map(m) => m
                .entries
                .iter()
                .map(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => below(&me.key).max(below(&me.value)),
                    EntryExpr::StructField(f) => below(&f.value),
                })
                .max()
                .unwrap_or(0),
            Expr::Struct(s) => s
                .entries
                .iter()
                .map(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => below(&me.key).max(below(&me.value)),
                    EntryExpr::StructField(f) => below(&f.value),
                })
                .max()
                .unwrap_or(0),
            Expr::Select(s) => below(&s.operand),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => 0,
        }
    };
    (children + 1).min(limit + 1)
}

/// Rewrites one program.
pub(super) struct Rewriter {
    next_id: u64,
    /// Accumulators of the comprehensions we are in: never wrapped, so the interpreter keeps
    /// its in-place `map`/`filter`.
    accus: Vec<String>,
}

impl Rewriter {
    pub(super) fn new() -> Self {
        // Far above any id the parser hands out.
        Rewriter { next_id: 1 << 40, accus: Vec::new() }
    }

    fn node(&mut self, expr: Expr) -> IdedExpr {
        self.next_id += 1;
        IdedExpr { id: self.next_id, expr }
    }

    fn hook(&mut self, name: &str, e: IdedExpr) -> IdedExpr {
        if matches!(e.expr, Expr::Literal(_)) {
            return e;
        }
        if let Expr::Ident(n) = &e.expr
            && self.accus.contains(n)
        {
            return e;
        }
        self.node(Expr::Call(CallExpr { func_name: name.to_string(), target: None, args: vec![e] }))
    }

    pub(super) fn rewrite(&mut self, e: IdedExpr) -> IdedExpr {
        if let Some(op) = logical_op(&e) {
            let operands = self.flatten(e, op);
            let operands: Vec<IdedExpr> = operands.into_iter().map(|o| self.rewrite(o)).collect();
            return self.balance(operands, op);
        }
        let id = e.id;
        let expr = match e.expr {
            Expr::Call(call) => return self.call(id, call),
            Expr::Comprehension(c) => {
                let c = *c;
                let iter_range = self.rewrite(c.iter_range);
                let iter_range = self.hook("@range", iter_range);
                let accu_init = self.rewrite(c.accu_init);
                self.accus.push(c.accu_var.clone());
                let loop_cond = self.rewrite(c.loop_cond);
                let loop_step = self.rewrite(c.loop_step);
                let result = self.rewrite(c.result);
                self.accus.pop();
                Expr::Comprehension(Box::new(ComprehensionExpr {
                    iter_range,
                    accu_init,
                    loop_cond,
                    loop_step,
                    result,
                    ..c
                }))
            }
            Expr::List(l) => {
                let elements = l
                    .elements
                    .into_iter()
                    .map(|el| {
                        let el = self.rewrite(el);
                        self.hook("@deep", el)
                    })
                    .collect();
                Expr::List(ListExpr { elements, optional_indices: l.optional_indices })
            }
            Expr::Map(m) => {
                let entries = m
                    .entries
                    .into_iter()
                    .map(|mut en| {
                        if let EntryExpr::MapEntry(me) = &mut en.expr {
                            let key = self.rewrite(std::mem::take(&mut me.key));
                            me.key = self.hook("@deep", key);
                            let value = self.rewrite(std::mem::take(&mut me.value));
                            me.value = self.hook("@deep", value);
                        }
                        en
                    })
                    .collect();
                Expr::Map(MapExpr { entries })
            }
            Expr::Select(mut s) => {
                let operand = self.rewrite(std::mem::take(&mut *s.operand));
                *s.operand = operand;
                Expr::Select(s)
            }
            other => other,
        };
        IdedExpr { id, expr }
    }

    fn flatten(&mut self, e: IdedExpr, op: &str) -> Vec<IdedExpr> {
        let mut out = Vec::new();
        let mut stack = vec![e];
        while let Some(e) = stack.pop() {
            match e.expr {
                Expr::Call(mut c) if c.func_name == op && c.target.is_none() && c.args.len() == 2 => {
                    let right = c.args.pop().unwrap_or_default();
                    let left = c.args.pop().unwrap_or_default();
                    stack.push(right);
                    stack.push(left);
                }
                expr => out.push(IdedExpr { id: e.id, expr }),
            }
        }
        out
    }

    fn balance(&mut self, mut operands: Vec<IdedExpr>, op: &str) -> IdedExpr {
        if operands.len() <= 1 {
            return operands.pop().unwrap_or_default();
        }
        let right = operands.split_off(operands.len() / 2);
        let left = self.balance(operands, op);
        let right = self.balance(right, op);
        self.node(Expr::Call(CallExpr { func_name: op.to_string(), target: None, args: vec![left, right] }))
    }

    fn call(&mut self, id: u64, mut call: CallExpr) -> IdedExpr {
        if let Some(name) = qualified_name(&call) {
            call.func_name = name;
            call.target = None;
        }
        let mut target = call.target.take().map(|t| self.rewrite(*t));
        let mut args: Vec<IdedExpr> = std::mem::take(&mut call.args).into_iter().map(|a| self.rewrite(a)).collect();
        let name = call.func_name;
        // Our own implementations, called globally with the target first.
        let own = match (name.as_str(), &target) {
            ("matches", _) => Some("@matches"),
            ("replace", Some(_)) => Some("@replace"),
            _ => None,
        };
        let name = match own {
            Some(own) => {
                if let Some(t) = target.take() {
                    args.insert(0, t);
                }
                own.to_string()
            }
            None => name,
        };
        let appends_to_accu = name == operators::ADD
            && matches!(args.first(), Some(IdedExpr { expr: Expr::Ident(n), .. }) if self.accus.contains(n));
        if !UNCHARGED.contains(&name.as_str()) && !appends_to_accu {
            let hook = if CONST_TIME.contains(&name.as_str()) { "@str" } else { "@deep" };
            target = target.map(|t| self.hook(hook, t));
            args = args.into_iter().map(|a| self.hook(hook, a)).collect();
        }
        IdedExpr { id, expr: Expr::Call(CallExpr { func_name: name, target: target.map(Box::new), args }) }
    }
}
