//! Kubernetes API machinery for skiff, as pure functions over JSON objects: the served kinds and
//! their rules (defaulting, validation, tables), selectors, patches and `Status` errors.
//! No IO and no async runtime here.

pub mod auth;
pub mod crd;
pub mod field;
pub mod go_diff;
pub(crate) mod go_url;
pub mod host_ports;
pub mod ingress_class;
pub mod jsonpath;
pub mod kinds;
pub mod managed;
pub mod meta;
pub mod names;
pub mod node_restriction;
pub mod patch;
pub mod pod_security;
pub mod quantity;
pub mod scale;
pub mod schema;
pub mod selector;
pub mod status;
pub mod storage_class;
pub mod table;
pub mod time;
pub mod webhook_config;

pub use status::ApiError;
