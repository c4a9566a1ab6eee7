//! The definition as upstream validates it: its internal type, into which the v1 conversion
//! moves `versions[*].schema`, `subresources`, `additionalPrinterColumns` and
//! `selectableFields` to the top of the spec when every version carries the same value (always
//! so for a single version). That decides whether an error is reported at
//! `spec.validation.openAPIV3Schema` or at `spec.versions[i].schema.openAPIV3Schema`.

use crate::field::{BadValue, go_quote};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinitionSpec, CustomResourceDefinitionVersion,
    CustomResourceSubresources, CustomResourceValidation, SelectableField,
};

/// Which per-version fields moved to the top level.
pub(super) struct Internal<'a> {
    pub versions: &'a [CustomResourceDefinitionVersion],
    schema: bool,
    subresources: bool,
    columns: bool,
    selectable: bool,
}

/// Go's semantic equality treats a nil and an empty slice alike.
fn same_list<T: PartialEq>(a: &Option<Vec<T>>, b: &Option<Vec<T>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

impl<'a> Internal<'a> {
    pub fn new(spec: &'a CustomResourceDefinitionSpec) -> Self {
        let versions = spec.versions.as_slice();
        let all = |same: &dyn Fn(&CustomResourceDefinitionVersion, &CustomResourceDefinitionVersion) -> bool| {
            versions.first().is_some_and(|first| versions.iter().all(|v| same(v, first)))
        };
        Internal {
            versions,
            schema: all(&|v, f| v.schema == f.schema),
            subresources: all(&|v, f| v.subresources == f.subresources),
            columns: all(&|v, f| same_list(&v.additional_printer_columns, &f.additional_printer_columns)),
            selectable: all(&|v, f| same_list(&v.selectable_fields, &f.selectable_fields)),
        }
    }

    fn first(&self) -> Option<&'a CustomResourceDefinitionVersion> {
        self.versions.first()
    }

    /// `spec.validation`.
    pub fn validation(&self) -> Option<&'a CustomResourceValidation> {
        self.first().filter(|_| self.schema).and_then(|v| v.schema.as_ref())
    }
    /// `spec.versions[i].schema`.
    pub fn version_validation(&self, i: usize) -> Option<&'a CustomResourceValidation> {
        self.versions.get(i).filter(|_| !self.schema).and_then(|v| v.schema.as_ref())
    }
    pub fn subresources(&self) -> Option<&'a CustomResourceSubresources> {
        self.first().filter(|_| self.subresources).and_then(|v| v.subresources.as_ref())
    }
    pub fn version_subresources(&self, i: usize) -> Option<&'a CustomResourceSubresources> {
        self.versions.get(i).filter(|_| !self.subresources).and_then(|v| v.subresources.as_ref())
    }
    pub fn columns(&self) -> &'a [CustomResourceColumnDefinition] {
        self.first().filter(|_| self.columns).and_then(|v| v.additional_printer_columns.as_deref()).unwrap_or_default()
    }
    pub fn version_columns(&self, i: usize) -> &'a [CustomResourceColumnDefinition] {
        self.versions
            .get(i)
            .filter(|_| !self.columns)
            .and_then(|v| v.additional_printer_columns.as_deref())
            .unwrap_or_default()
    }
    pub fn selectable_fields(&self) -> &'a [SelectableField] {
        self.first().filter(|_| self.selectable).and_then(|v| v.selectable_fields.as_deref()).unwrap_or_default()
    }
    pub fn version_selectable_fields(&self, i: usize) -> &'a [SelectableField] {
        self.versions
            .get(i)
            .filter(|_| !self.selectable)
            .and_then(|v| v.selectable_fields.as_deref())
            .unwrap_or_default()
    }

    /// Whether version `i` has the status subresource (`getSubresourcesForVersion`: its own
    /// subresources or the shared ones, which are the same value).
    pub fn status_enabled(&self, i: usize) -> bool {
        self.versions.get(i).and_then(|v| v.subresources.as_ref()).is_some_and(|s| s.status.is_some())
    }
    /// `hasAnyStatusEnabled`.
    pub fn any_status_enabled(&self) -> bool {
        (0..self.versions.len()).any(|i| self.status_enabled(i))
    }

    /// `spec.versions` as Go's `%#v` prints the internal slice. Set pointers print as addresses
    /// upstream, which cannot be reproduced; a fixed one stands in.
    pub fn go_versions(&self) -> BadValue {
        const TYPE: &str = "apiextensions.CustomResourceDefinitionVersion";
        if self.versions.is_empty() {
            return BadValue::Go(format!("[]{TYPE}(nil)"));
        }
        let ptr = |set: bool, ty: &str| {
            if set { format!("(*{ty})(0xc000000000)") } else { format!("(*{ty})(nil)") }
        };
        let items: Vec<String> = (0..self.versions.len())
            .map(|i| {
                let v = &self.versions[i];
                format!(
                    "{TYPE}{{Name:{}, Served:{}, Storage:{}, Deprecated:{}, DeprecationWarning:{}, Schema:{}, Subresources:{}, AdditionalPrinterColumns:{}, SelectableFields:{}}}",
                    go_quote(&v.name),
                    v.served,
                    v.storage,
                    v.deprecated.unwrap_or_default(),
                    ptr(v.deprecation_warning.is_some(), "string"),
                    ptr(self.version_validation(i).is_some(), "apiextensions.CustomResourceValidation"),
                    ptr(self.version_subresources(i).is_some(), "apiextensions.CustomResourceSubresources"),
                    go_columns(if self.columns { None } else { v.additional_printer_columns.as_deref() }),
                    go_selectable(if self.selectable { None } else { v.selectable_fields.as_deref() }),
                )
            })
            .collect();
        BadValue::Go(format!("[]{TYPE}{{{}}}", items.join(", ")))
    }
}

fn go_columns(columns: Option<&[CustomResourceColumnDefinition]>) -> String {
    const TYPE: &str = "apiextensions.CustomResourceColumnDefinition";
    let Some(columns) = columns else { return format!("[]{TYPE}(nil)") };
    let items: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{TYPE}{{Name:{}, Type:{}, Format:{}, Description:{}, Priority:{}, JSONPath:{}}}",
                go_quote(&c.name),
                go_quote(&c.type_),
                go_quote(c.format.as_deref().unwrap_or_default()),
                go_quote(c.description.as_deref().unwrap_or_default()),
                c.priority.unwrap_or_default(),
                go_quote(&c.json_path),
            )
        })
        .collect();
    format!("[]{TYPE}{{{}}}", items.join(", "))
}

fn go_selectable(fields: Option<&[SelectableField]>) -> String {
    const TYPE: &str = "apiextensions.SelectableField";
    let Some(fields) = fields else { return format!("[]{TYPE}(nil)") };
    let items: Vec<String> = fields.iter().map(|f| format!("{TYPE}{{JSONPath:{}}}", go_quote(&f.json_path))).collect();
    format!("[]{TYPE}{{{}}}", items.join(", "))
}
