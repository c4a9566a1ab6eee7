//! The errors a CRD write gets for its `x-kubernetes-validations`, worded and placed as
//! apiextensions' `ValidateCustomResourceDefinitionOpenAPISchema` places them
//! (`<node>.x-kubernetes-validations[i].rule: Invalid value: apiextensions.ValidationRule{...}:
//! compilation failed: ...`). Static cost estimation is not done: the runtime budget bounds
//! rules instead.

use super::compile::{CompileError, Want, compile};
use super::rule::{REASONS, RuleSpec, field_path};
use crate::crd::Schema;
use crate::field::{BadValue, ErrorList, FieldError, Path};

/// Check every rule of `schema`, whose `openAPIV3Schema` is at `base`.
pub fn check(schema: &Schema, base: &Path) -> ErrorList {
    super::on_big_stack(super::COMPILE_STACK, || {
        let mut errs = ErrorList::new();
        walk(schema, schema, true, base, None, &mut errs);
        errs
    })
}

/// `at`: the structural node the rules of `validation` apply to (they differ inside `allOf`).
/// `uncorrelatable`: where the old object stopped correlating, if it did above.
fn walk(
    validation: &Schema,
    at: &Schema,
    root: bool,
    path: &Path,
    uncorrelatable: Option<&Path>,
    errs: &mut ErrorList,
) {
    rules(validation, at, root, path, uncorrelatable, errs);
    for (k, p) in &validation.properties {
        let node = at.property(k).unwrap_or(p);
        walk(p, node, node.x_embedded_resource, &path.child("properties").key(k), uncorrelatable, errs);
    }
    if let Some(items) = validation.items_schema() {
        let node = at.items_schema().unwrap_or(items);
        let here = path.child("items");
        let lost = match (uncorrelatable, at.x_list_type.as_deref()) {
            (Some(p), _) => Some(p.clone()),
            (None, Some("map")) => None,
            (None, _) => Some(here.clone()),
        };
        walk(items, node, node.x_embedded_resource, &here, lost.as_ref(), errs);
    }
    if let Some(extra) = validation.additional_schema() {
        let node = at.additional_schema().unwrap_or(extra);
        walk(extra, node, node.x_embedded_resource, &path.child("additionalProperties"), uncorrelatable, errs);
    }
    for (i, a) in validation.all_of.iter().enumerate() {
        walk(a, at, root, &path.child("allOf").index(i), uncorrelatable, errs);
    }
}

fn rules(
    validation: &Schema,
    at: &Schema,
    root: bool,
    path: &Path,
    uncorrelatable: Option<&Path>,
    errs: &mut ErrorList,
) {
    let specs = RuleSpec::list(&validation.x_validations);
    let base = path.child("x-kubernetes-validations");
    for (i, spec) in specs.iter().enumerate() {
        let p = base.index(i);
        let value = || BadValue::Go(spec.go_value());
        if spec.rule.trim().is_empty() {
            errs.push(FieldError::required(&p.child("rule"), "rule is not specified"));
        }
        if !spec.message.is_empty() && spec.message.trim().is_empty() {
            errs.push(FieldError::invalid(
                &p.child("message"),
                spec.message.as_str(),
                "message must be non-empty if specified",
            ));
        }
        if spec.message.contains('\n') {
            errs.push(FieldError::invalid(
                &p.child("message"),
                spec.message.as_str(),
                "message must not contain line breaks",
            ));
        }
        if spec.rule.contains('\n') && spec.message.is_empty() {
            errs.push(FieldError::required(
                &p.child("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !spec.message_expression.is_empty() && spec.message_expression.trim().is_empty() {
            errs.push(FieldError::required(
                &p.child("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &spec.reason
            && !REASONS.contains(&reason.as_str())
        {
            errs.push(FieldError::not_supported(&p.child("reason"), reason.as_str(), &REASONS));
        }
        if !spec.field_path.is_empty() {
            if spec.field_path.contains('\n') {
                errs.push(FieldError::invalid(
                    &p.child("fieldPath"),
                    spec.field_path.as_str(),
                    "fieldPath must not contain line breaks",
                ));
            }
            if let Err(e) = field_path(&spec.field_path, at) {
                errs.push(FieldError::invalid(
                    &p.child("fieldPath"),
                    spec.field_path.as_str(),
                    format!("fieldPath must be a valid path: {e}"),
                ));
            }
        }
        if spec.rule.trim().is_empty() {
            continue;
        }
        match compile(&spec.rule, at, root, Want::Bool, true) {
            Ok(compiled) => {
                if compiled.uses_old_self
                    && let Some(lost) = uncorrelatable
                {
                    errs.push(FieldError::invalid(
                        &p.child("rule"),
                        spec.rule.as_str(),
                        format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {lost}"),
                    ));
                }
                if let Some(optional) = spec.optional_old_self
                    && !compiled.uses_old_self
                {
                    errs.push(FieldError::invalid(
                        &p.child("optionalOldSelf"),
                        optional,
                        "may not be set if oldSelf is not used in rule",
                    ));
                }
            }
            Err(CompileError::Invalid(e)) => {
                errs.push(FieldError::invalid_go(&p.child("rule"), value(), format!("compilation failed: {e}")));
            }
            Err(CompileError::WrongType) => {
                errs.push(FieldError::invalid_go(&p.child("rule"), value(), "cel expression must evaluate to a bool"));
            }
        }
        if !spec.message_expression.trim().is_empty() {
            let at_msg = p.child("messageExpression");
            match compile(&spec.message_expression, at, root, Want::String, true) {
                Ok(_) => {}
                Err(CompileError::Invalid(e)) => errs.push(FieldError::invalid_go(
                    &at_msg,
                    value(),
                    format!("messageExpression compilation failed: {e}"),
                )),
                Err(CompileError::WrongType) => {
                    errs.push(FieldError::invalid_go(&at_msg, value(), "messageExpression must evaluate to a string"))
                }
            }
        }
    }
}
