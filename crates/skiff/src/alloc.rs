//! The process's allocator: mimalloc, tuned to give memory back soon after it is freed.
//!
//! glibc's per-thread arenas kept most of a burst's memory (a large list, a flood of writes)
//! for good. mimalloc returns it, but only once a purge delay has passed and only when the
//! thread that freed it allocates again, which an idle tokio worker never does; its default
//! delay (1 s) left ~15 MiB more held after 16 concurrent lists of 10,000 pods than 10 ms
//! (mimalloc v2's default), which costs them no time. 0 ms held ~5 MiB less again but made the
//! lists 25% slower (pages returned and faulted in again). Transparent huge pages are off (the
//! crate's `no_thp`): a 2 MiB page stays resident while any 4 KiB of it is used, which added
//! ~16 MiB at idle and kept freed memory from being returned.
//!
//! One of skiff's two places of unsafe code (calls into mimalloc's C option table; the other
//! is bpf(2) in `skiff_node::net::bpf`).
#![allow(unsafe_code)]

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The index of `purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys does not name it);
// the test below fails if a new mimalloc moves it.
const PURGE_DELAY: mi_option_t = 15;

/// Purge freed pages after 10 ms, unless `MIMALLOC_PURGE_DELAY` says otherwise (mimalloc
/// reads its environment itself). Call first thing in `main`, before threads start.
pub fn return_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: setting an option is a plain store into mimalloc's option table.
    unsafe {
        mi_option_set(PURGE_DELAY, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn option_indices_are_mimalloc_v3s() {
        // mimalloc v3's default purge delay (options.c), read before `return_memory_promptly`,
        // which no test calls.
        // SAFETY: reading an option is a plain load from mimalloc's option table.
        let delay = unsafe { mi_option_get(PURGE_DELAY) };
        assert_eq!(delay, 1000);
    }
}
