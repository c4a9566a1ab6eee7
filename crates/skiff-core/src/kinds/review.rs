//! The review kinds: questions asked by creating an object that is answered and never stored
//! (`authorization.k8s.io/v1` SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectRulesReview; `authentication.k8s.io/v1`
//! SelfSubjectReview and TokenReview). `kubectl auth can-i` and `kubectl auth whoami` ask them.
//! Their validation is upstream's; the API server answers them (`create` is their only verb).

use super::{
    CREATED_AT_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of,
};
use crate::field::{ErrorList, FieldError, Path};
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenReview};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
};
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

/// Which question a review asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    SelfSubjectAccess,
    SubjectAccess,
    LocalSubjectAccess,
    SelfSubjectRules,
    SelfSubject,
    Token,
}

pub struct Review {
    info: &'static ResourceInfo,
    pub question: Question,
    schema: fn(&mut SchemaGenerator) -> TypedSchema,
    normalize: fn(&Value) -> Result<Value, DecodeError>,
}

const CREATE: &[&str] = &["create"];

const fn info(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: CREATE,
        subresources: &[],
    }
}

const AUTHZ: &str = "authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";

static SELF_SUBJECT_ACCESS_INFO: ResourceInfo =
    info(AUTHZ, "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", false);
static SUBJECT_ACCESS_INFO: ResourceInfo =
    info(AUTHZ, "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", false);
static LOCAL_SUBJECT_ACCESS_INFO: ResourceInfo =
    info(AUTHZ, "localsubjectaccessreviews", "localsubjectaccessreview", "LocalSubjectAccessReview", true);
static SELF_SUBJECT_RULES_INFO: ResourceInfo =
    info(AUTHZ, "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", false);
static SELF_SUBJECT_INFO: ResourceInfo =
    info(AUTHN, "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", false);
static TOKEN_INFO: ResourceInfo = info(AUTHN, "tokenreviews", "tokenreview", "TokenReview", false);

pub static SELF_SUBJECT_ACCESS_REVIEWS: Review = Review {
    info: &SELF_SUBJECT_ACCESS_INFO,
    question: Question::SelfSubjectAccess,
    schema: schema_of::<SelfSubjectAccessReview>,
    normalize: roundtrip::<SelfSubjectAccessReview>,
};
pub static SUBJECT_ACCESS_REVIEWS: Review = Review {
    info: &SUBJECT_ACCESS_INFO,
    question: Question::SubjectAccess,
    schema: schema_of::<SubjectAccessReview>,
    normalize: roundtrip::<SubjectAccessReview>,
};
pub static LOCAL_SUBJECT_ACCESS_REVIEWS: Review = Review {
    info: &LOCAL_SUBJECT_ACCESS_INFO,
    question: Question::LocalSubjectAccess,
    schema: schema_of::<LocalSubjectAccessReview>,
    normalize: roundtrip::<LocalSubjectAccessReview>,
};
pub static SELF_SUBJECT_RULES_REVIEWS: Review = Review {
    info: &SELF_SUBJECT_RULES_INFO,
    question: Question::SelfSubjectRules,
    schema: schema_of::<SelfSubjectRulesReview>,
    normalize: roundtrip::<SelfSubjectRulesReview>,
};
pub static SELF_SUBJECT_REVIEWS: Review = Review {
    info: &SELF_SUBJECT_INFO,
    question: Question::SelfSubject,
    schema: schema_of::<SelfSubjectReview>,
    normalize: roundtrip::<SelfSubjectReview>,
};
pub static TOKEN_REVIEWS: Review = Review {
    info: &TOKEN_INFO,
    question: Question::Token,
    schema: schema_of::<TokenReview>,
    normalize: roundtrip::<TokenReview>,
};

static COLUMNS: [Column; 2] = [NAME_COLUMN, CREATED_AT_COLUMN];

/// The question `kind` asks, if it is a review kind.
pub fn question(kind: &dyn Kind) -> Option<Question> {
    let all = [
        &SELF_SUBJECT_ACCESS_REVIEWS,
        &SUBJECT_ACCESS_REVIEWS,
        &LOCAL_SUBJECT_ACCESS_REVIEWS,
        &SELF_SUBJECT_RULES_REVIEWS,
        &SELF_SUBJECT_REVIEWS,
        &TOKEN_REVIEWS,
    ];
    let info = kind.info();
    all.iter().find(|r| std::ptr::eq(r.info, info)).map(|r| r.question)
}

/// Exactly one of the two attribute kinds (upstream's `ValidateSubjectAccessReviewSpec`).
fn one_of_attributes(obj: &Value, errs: &mut ErrorList) {
    let has = |f: &str| obj.pointer(&format!("/spec/{f}")).is_some_and(|v| !v.is_null());
    let spec = Path::new("spec");
    match (has("resourceAttributes"), has("nonResourceAttributes")) {
        (true, true) => errs.push(FieldError::invalid_go(
            &spec.child("nonResourceAttributes"),
            crate::field::BadValue::Go("<nil>".into()),
            "cannot be specified in combination with resourceAttributes",
        )),
        (false, false) => errs.push(FieldError::invalid_go(
            &spec.child("resourceAttributes"),
            crate::field::BadValue::Go("<nil>".into()),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
}

impl Kind for Review {
    fn info(&self) -> &'static ResourceInfo {
        self.info
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        (self.schema)(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        (self.normalize)(raw)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = ErrorList::new();
        match self.question {
            Question::SelfSubjectAccess => one_of_attributes(obj, &mut errs),
            Question::SubjectAccess | Question::LocalSubjectAccess => {
                one_of_attributes(obj, &mut errs);
                let user = obj.pointer("/spec/user").and_then(Value::as_str).unwrap_or_default();
                let groups = obj.pointer("/spec/groups").and_then(Value::as_array).is_some_and(|g| !g.is_empty());
                if user.is_empty() && !groups {
                    errs.push(FieldError::invalid(
                        &Path::new("spec").child("user"),
                        user,
                        "at least one of user or group must be specified",
                    ));
                }
            }
            Question::SelfSubjectRules | Question::SelfSubject | Question::Token => {}
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, _now: Timestamp) -> Vec<Value> {
        vec![json!(crate::meta::name(obj)), json!(super::created_at(obj))]
    }
}
