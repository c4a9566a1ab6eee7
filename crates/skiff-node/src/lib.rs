//! The node agent: runs the pods bound to this node. So far: `process`, the pure translation of
//! a Pod's container and its image config into the process to start (argv, env, user, cwd), with
//! Kubernetes' rules and error wording.

pub mod expand;
pub mod process;
