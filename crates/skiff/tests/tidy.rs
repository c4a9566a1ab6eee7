//! Rules the code keeps, checked on every test run (see CONTRIBUTING.md):
//! - every module says what it is (`//!` on its first line);
//! - the crate graph points one way: each crate depends only on the skiff crates its row below
//!   allows, the pure crates (`skiff-core`, `skiff-stream`) link no tokio, the API server
//!   reaches neither the node, the image store nor the builder, and the node API
//!   (`skiff-nodeapi`) none of them nor the API server;
//! - library crates return typed errors, not `Result<_, String>`; the files that still do are
//!   listed, and the list may only shrink.
//!
//! Each rule is a pure function over what was read, with a test that shows it failing.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each workspace crate and the skiff crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("skiff-core", &[]),
    ("skiff-stream", &[]),
    ("skiff-store", &[]),
    ("skiff-image", &[]),
    ("skiff-build", &["skiff-image"]),
    ("skiff-nodeapi", &["skiff-core", "skiff-stream"]),
    ("skiff-node", &["skiff-core", "skiff-image", "skiff-stream", "skiff-nodeapi"]),
    ("skiff-apiserver", &["skiff-core", "skiff-store", "skiff-stream", "skiff-nodeapi"]),
    (
        "skiff",
        &[
            "skiff-core",
            "skiff-stream",
            "skiff-store",
            "skiff-image",
            "skiff-build",
            "skiff-nodeapi",
            "skiff-node",
            "skiff-apiserver",
        ],
    ),
];

/// Crates that must not link these, directly or through anything else.
const NEVER_LINKS: &[(&str, &[&str])] = &[
    ("skiff-core", &["tokio"]),
    ("skiff-stream", &["tokio"]),
    ("skiff-apiserver", &["skiff-node", "skiff-image", "skiff-build"]),
    ("skiff-nodeapi", &["skiff-node", "skiff-image", "skiff-build", "skiff-apiserver"]),
];

/// Library files that still return `Result<_, String>` (paths from the workspace root). Convert
/// them to `thiserror` enums and take them off this list; nothing may join it.
const STRING_ERRORS_LEFT: &[&str] = &[];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The package graph: package name → normal dependencies' names (resolved, this platform).
fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let names: BTreeMap<&str, &str> = (meta["packages"].as_array().into_iter().flatten())
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(name) = node["id"].as_str().and_then(|id| names.get(id)) else { continue };
        let deps = (node["deps"].as_array().into_iter().flatten())
            .filter(|d| d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null()))
            .filter_map(|d| names.get(d["pkg"].as_str()?).map(|n| n.to_string()))
            .collect::<BTreeSet<_>>();
        graph.entry(name.to_string()).or_insert_with(BTreeSet::new).extend(deps);
    }
    graph
}

/// Direct skiff dependencies that `ALLOWED` does not list, and workspace crates it lacks.
fn direct_violations(graph: &BTreeMap<String, BTreeSet<String>>, allowed: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = Vec::new();
    for (krate, deps) in graph.iter().filter(|(k, _)| k.starts_with("skiff")) {
        let Some((_, ok)) = allowed.iter().find(|(k, _)| k == krate) else {
            out.push(format!("{krate} is not in the table of allowed dependencies"));
            continue;
        };
        for dep in deps.iter().filter(|d| d.starts_with("skiff") && !ok.contains(&d.as_str())) {
            out.push(format!("{krate} depends on {dep}, which its row does not allow"));
        }
    }
    out
}

/// Crates that reach what `never` forbids them, with the path that gets there.
fn transitive_violations(graph: &BTreeMap<String, BTreeSet<String>>, never: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = Vec::new();
    for (krate, forbidden) in never {
        // Breadth-first from the crate, remembering how each crate was reached.
        let mut via: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = vec![*krate];
        while let Some(at) = queue.pop() {
            for dep in graph.get(at).into_iter().flatten() {
                if dep != krate && !via.contains_key(dep.as_str()) {
                    via.insert(dep, at);
                    queue.push(dep);
                }
            }
        }
        for f in *forbidden {
            if via.contains_key(f) {
                let mut path = vec![*f];
                while let Some(prev) = via.get(path[path.len() - 1]).filter(|p| *p != krate) {
                    path.push(prev);
                }
                path.push(krate);
                path.reverse();
                out.push(format!("{krate} links {f}: {}", path.join(" -> ")));
            }
        }
    }
    out
}

/// Every `.rs` file under the crates' `src` directories.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).expect("crates").flatten() {
        walk(&krate.path().join("src"), &mut out);
    }
    out.sort();
    out
}

/// Files whose first line is not a module doc comment (a test module's `tests.rs` is exempt).
fn undocumented(files: &[(String, String)]) -> Vec<String> {
    (files.iter())
        .filter(|(path, text)| !path.ends_with("/tests.rs") && !text.starts_with("//!"))
        .map(|(path, _)| format!("{path} has no module doc (`//!` on its first line)"))
        .collect()
}

/// Library files with `Result<_, String>` that the list does not name, and named ones without.
fn string_errors(files: &[(String, String)], left: &[&str]) -> Vec<String> {
    let has = |text: &str| text.lines().any(|l| !l.trim_start().starts_with("//") && returns_string_error(l));
    let mut out = Vec::new();
    for (path, text) in files.iter().filter(|(p, _)| !p.starts_with("crates/skiff/") && !p.ends_with("/tests.rs")) {
        match (has(text), left.contains(&path.as_str())) {
            (true, false) => out.push(format!("{path} returns Result<_, String>: use a thiserror enum")),
            (false, true) => out.push(format!("{path} no longer returns Result<_, String>: take it off the list")),
            _ => {}
        }
    }
    out
}

/// Whether a line spells a `Result<..., String>` type.
fn returns_string_error(line: &str) -> bool {
    line.match_indices("Result<").any(|(at, _)| {
        // The type's closing bracket, at its nesting depth.
        let rest = &line[at + "Result<".len()..];
        let mut depth = 1;
        let end = rest.char_indices().find_map(|(i, c)| {
            match c {
                '<' | '(' => depth += 1,
                '>' | ')' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        });
        end.is_some_and(|end| rest[..end].trim_end().ends_with(", String"))
    })
}

fn read_sources() -> Vec<(String, String)> {
    let root = workspace();
    (sources().into_iter())
        .map(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (rel, text)
        })
        .collect()
}

#[test]
fn the_crate_graph_points_one_way() {
    let graph = dependency_graph();
    assert!(graph.contains_key("skiff-apiserver") && graph.contains_key("tokio"), "read the whole graph");
    let mut problems = direct_violations(&graph, ALLOWED);
    problems.extend(transitive_violations(&graph, NEVER_LINKS));
    assert!(problems.is_empty(), "crate graph rules broken:\n  {}", problems.join("\n  "));
}

#[test]
fn every_module_is_documented_and_libraries_return_typed_errors() {
    let files = read_sources();
    assert!(files.len() > 100, "found the sources ({})", files.len());
    let mut problems = undocumented(&files);
    problems.extend(string_errors(&files, STRING_ERRORS_LEFT));
    assert!(problems.is_empty(), "tidy rules broken:\n  {}", problems.join("\n  "));
}

/// Each rule, shown failing on input that breaks it.
#[test]
fn the_rules_catch_what_they_forbid() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("skiff-apiserver", vec!["skiff-core", "axum"]),
        ("skiff-core", vec!["serde"]),
        ("axum", vec!["tokio", "skiff-build"]),
        ("skiff-build", vec!["skiff-image"]),
        ("skiff-extra", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        direct_violations(&graph, &[("skiff-apiserver", &["skiff-store"]), ("skiff-core", &[]), ("skiff-build", &[])]),
        [
            "skiff-apiserver depends on skiff-core, which its row does not allow",
            "skiff-build depends on skiff-image, which its row does not allow",
            "skiff-extra is not in the table of allowed dependencies",
        ]
    );
    assert_eq!(
        transitive_violations(&graph, &[("skiff-apiserver", &["skiff-image"]), ("skiff-core", &["tokio"])]),
        ["skiff-apiserver links skiff-image: skiff-apiserver -> axum -> skiff-build -> skiff-image"]
    );
    let files = [
        ("crates/a/src/lib.rs".to_string(), "//! A.\nfn f() -> Result<(), String> {}".to_string()),
        ("crates/a/src/b.rs".to_string(), "use x;\nfn g() -> Result<Vec<u8>, std::io::Error> {}".to_string()),
        ("crates/a/src/c.rs".to_string(), "//! C.\nfn h() -> Result<(), Error> {}".to_string()),
        ("crates/a/src/b/tests.rs".to_string(), "use super::*;".to_string()),
    ];
    assert_eq!(undocumented(&files), ["crates/a/src/b.rs has no module doc (`//!` on its first line)"]);
    assert_eq!(
        string_errors(&files, &["crates/a/src/c.rs"]),
        [
            "crates/a/src/lib.rs returns Result<_, String>: use a thiserror enum",
            "crates/a/src/c.rs no longer returns Result<_, String>: take it off the list",
        ]
    );
    assert!(returns_string_error("fn x() -> Result<HashMap<String, u8>, String> {"));
    assert!(!returns_string_error("fn x() -> Result<HashMap<String, String>, Error> {"));
}
