//! The one environment every rule compiles and runs with: the CEL standard library, cel-go's
//! strings extension, the Kubernetes libraries and the budget hooks. Built once, shared.

use super::{budget, library};
use cel::common::types::DYN_TYPE;
use cel::{DeclarationError, Env};
use std::sync::{Arc, LazyLock};

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    // A failure here is a bug the tests catch (`the_environment_builds`); the standard library
    // alone still keeps rules running.
    Arc::new(build().unwrap_or_else(|_| Env::stdlib()))
});

/// The shared environment.
pub(super) fn env() -> Arc<Env> {
    ENV.clone()
}

pub(super) fn build() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_overload("@range", "dyn_range", vec![DYN_TYPE], budget::hook_range)?;
    env.add_overload("@deep", "dyn_deep", vec![DYN_TYPE], budget::hook_deep)?;
    env.add_overload("@str", "dyn_str", vec![DYN_TYPE], budget::hook_str)?;
    library::register(&mut env)?;
    Ok(env)
}
