//! Rules the code keeps, checked on every test run (see CONTRIBUTING.md):
//! - every module says what it is (`//!` on its first line);
//! - the crate graph points one way: each crate depends only on the skiff crates its row below
//!   allows, the pure crates (`skiff-core`, `skiff-stream`) link no tokio, the API server
//!   reaches neither the node, the image store nor the builder, and the node API
//!   (`skiff-nodeapi`) none of them nor the API server;
//! - library crates return typed errors, not `Result<_, String>`; the files that still do are
//!   listed, and the list may only shrink;
//! - no import cycles inside a crate: at every level of a crate's module tree, the sibling
//!   modules' `use crate::...`/`super::...` references form no cycle (a module may use its
//!   parent's items and its children freely);
//! - the long-lived shim links no libcontainer: nothing the shim's module reaches through such
//!   references uses `libcontainer::` (only the short-lived helpers do).
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
    ("skiff-client", &[]),
    ("skiff-controllers", &["skiff-core", "skiff-client"]),
    ("skiff-node", &["skiff-core", "skiff-image", "skiff-stream", "skiff-nodeapi", "skiff-client"]),
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
            "skiff-client",
            "skiff-node",
            "skiff-controllers",
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
    ("skiff-controllers", &["skiff-node", "skiff-image", "skiff-build", "skiff-apiserver", "libcontainer"]),
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

/// The module a source file is, as (crate directory, module path): `crates/skiff-node/src/agent/
/// worker/mod.rs` is (`skiff-node`, [agent, worker]). Test modules (`tests.rs`) and extra binary
/// roots (`src/bin/`) are none.
fn module_of(path: &str) -> Option<(String, Vec<String>)> {
    let rest = path.strip_prefix("crates/")?;
    let (krate, file) = rest.split_once("/src/")?;
    if file.starts_with("bin/") || file.ends_with("/tests.rs") || file == "tests.rs" {
        return None;
    }
    let file = file.strip_suffix(".rs")?;
    let mut segments: Vec<String> = file.split('/').map(String::from).collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        segments.pop();
    }
    Some((krate.to_string(), segments))
}

/// The code of a file that counts for references: no comment lines, and no item under
/// `#[cfg(test)]` (test code may use anything).
fn code_of(text: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        if line.trim() == "#[cfg(test)]" {
            // The item it gates: one line (`mod x;`), or up to its closing brace at column 0.
            if let Some(item) = lines.next()
                && !item.trim_end().ends_with(';')
            {
                lines.by_ref().find(|l| *l == "}");
            }
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// The child modules a file declares under `#[cfg(test)]` (`#[cfg(test)] mod generate;`).
fn test_only_children(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    (lines.windows(2))
        .filter(|w| w[0].trim() == "#[cfg(test)]")
        .filter_map(|w| {
            let decl = w[1].trim().trim_start_matches("pub(crate) ").trim_start_matches("pub ");
            Some(decl.strip_prefix("mod ")?.strip_suffix(';')?.to_string())
        })
        .collect()
}

/// The module paths a file's code names through `crate::` or `super::` (a `{...}` group gives
/// one path per item), resolved against its own module path, as written (not yet cut down to
/// the modules that exist).
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let ident = |s: &str| -> (String, usize) {
        let n = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
        (s[..n].to_string(), n)
    };
    // The segments of a path starting at `s` (after a `::`), with groups expanded.
    fn segments(s: &str, ident: &dyn Fn(&str) -> (String, usize)) -> Vec<Vec<String>> {
        if let Some(group) = s.strip_prefix('{') {
            let mut depth = 1;
            let end = group.char_indices().find_map(|(i, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            });
            let inner = &group[..end.unwrap_or(group.len())];
            let mut items = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(inner[start..i].trim());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return items.into_iter().filter(|i| !i.is_empty()).flat_map(|i| segments(i, ident)).collect();
        }
        let (name, n) = ident(s);
        if name.is_empty() {
            return vec![vec![]];
        }
        match s[n..].strip_prefix("::") {
            Some(rest) => segments(rest, ident).into_iter().map(|tail| [vec![name.clone()], tail].concat()).collect(),
            None => vec![vec![name]],
        }
    }
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // `skiff_crate::`, or a `super::` after another `super::` (counted from the first)
        }
        let mut base: Vec<String> = Vec::new();
        let mut rest = &code[at..];
        if let Some(r) = rest.strip_prefix("crate::") {
            rest = r;
        } else {
            base = here.to_vec();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
        }
        for tail in segments(rest, &ident) {
            out.push([base.clone(), tail].concat());
        }
    }
    out
}

/// A crate's module graph: each module (by path) and the modules its file references (each
/// reference cut down to the longest prefix that is a module of the crate).
type ModuleGraph = BTreeMap<String, BTreeMap<Vec<String>, BTreeSet<Vec<String>>>>;

fn module_graph(files: &[(String, String)]) -> ModuleGraph {
    let mut modules: BTreeMap<String, BTreeMap<Vec<String>, &str>> = BTreeMap::new();
    for (path, text) in files {
        if let Some((krate, module)) = module_of(path) {
            modules.entry(krate).or_default().insert(module, text);
        }
    }
    for known in modules.values_mut() {
        let tests: Vec<Vec<String>> = (known.iter())
            .flat_map(|(m, text)| test_only_children(text).into_iter().map(|c| [m.clone(), vec![c]].concat()))
            .collect();
        known.retain(|m, _| !tests.iter().any(|t| m.starts_with(t)));
    }
    let mut graph = ModuleGraph::new();
    for (krate, known) in &modules {
        for (module, text) in known {
            let refs = referenced_paths(&code_of(text), module)
                .into_iter()
                .filter_map(|p| (0..=p.len()).rev().map(|n| p[..n].to_vec()).find(|m| known.contains_key(m)))
                .filter(|m| m != module)
                .collect();
            graph.entry(krate.clone()).or_default().insert(module.clone(), refs);
        }
    }
    graph
}

/// Import cycles: at each level of each crate's module tree, sibling modules that reach each
/// other (a module's references to its ancestors and descendants do not count).
fn import_cycles(graph: &ModuleGraph) -> Vec<String> {
    let mut out = Vec::new();
    for (krate, modules) in graph {
        // parent module → sibling edges among its children
        let mut levels: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (from, refs) in modules {
            for to in refs {
                let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
                if common == from.len() || common == to.len() {
                    continue;
                }
                let edges = levels.entry(from[..common].to_vec()).or_default();
                edges.entry(from[common].clone()).or_default().insert(to[common].clone());
            }
        }
        for (parent, edges) in &levels {
            if let Some(cycle) = find_cycle(edges) {
                let at = if parent.is_empty() { "crate".to_string() } else { format!("crate::{}", parent.join("::")) };
                out.push(format!("{krate}: import cycle in {at}: {}", cycle.join(" -> ")));
            }
        }
    }
    out
}

/// One cycle of `edges`, as the names along it (the first repeated at the end), if any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        at: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| *s == at) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(at.to_string());
            return Some(cycle);
        }
        if !done.insert(at) {
            return None;
        }
        stack.push(at);
        for next in edges.get(at).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|k| visit(k, edges, &mut Vec::new(), &mut done))
}

/// Modules of `krate` reachable from `start` whose code uses `forbidden` (a path prefix such as
/// `libcontainer::`), with the way there.
fn reaches(
    graph: &ModuleGraph,
    files: &[(String, String)],
    krate: &str,
    start: &[&str],
    forbidden: &str,
) -> Vec<String> {
    let Some(modules) = graph.get(krate) else { return vec![format!("{krate}: no such crate")] };
    let start: Vec<String> = start.iter().map(|s| s.to_string()).collect();
    let code: BTreeMap<Vec<String>, String> = (files.iter())
        .filter_map(|(p, t)| module_of(p).filter(|(k, _)| k == krate).map(|(_, m)| (m, code_of(t))))
        .collect();
    let name = |m: &Vec<String>| format!("crate::{}", m.join("::"));
    let mut via: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::from([(start.clone(), start.clone())]);
    let mut queue = vec![start];
    let mut out = Vec::new();
    while let Some(at) = queue.pop() {
        if code.get(&at).is_some_and(|c| c.contains(forbidden)) {
            let mut path = vec![name(&at)];
            let mut m = &at;
            while via[m] != *m {
                m = &via[m];
                path.push(name(m));
            }
            path.reverse();
            out.push(format!("{krate}: {} uses {forbidden}", path.join(" -> ")));
        }
        for next in modules.get(&at).into_iter().flatten() {
            if !via.contains_key(next) {
                via.insert(next.clone(), at.clone());
                queue.push(next.clone());
            }
        }
    }
    out
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

#[test]
fn no_import_cycles_and_the_shim_links_no_libcontainer() {
    let files = read_sources();
    let graph = module_graph(&files);
    assert!(graph.get("skiff-node").is_some_and(|m| m.len() > 20), "read the node's modules");
    let mut problems = import_cycles(&graph);
    problems.extend(reaches(&graph, &files, "skiff-node", &["shim", "control"], "libcontainer::"));
    assert!(problems.is_empty(), "module rules broken:\n  {}", problems.join("\n  "));
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
    let modules = [
        ("crates/k/src/lib.rs", "//! K.\npub mod a;\npub mod b;\npub mod c;"),
        ("crates/k/src/a.rs", "//! A.\nuse crate::b::{self, B};\nuse crate::{c::C, x};"),
        ("crates/k/src/b/mod.rs", "//! B.\nmod inner;\nfn f() { super::c::g() }"),
        ("crates/k/src/b/inner.rs", "//! Inner.\nuse super::super::a::A;\nuse super::f; // a parent"),
        (
            "crates/k/src/c.rs",
            "//! C.\nuse libcontainer::Container;\n#[cfg(test)]\nmod t;\n#[cfg(test)]\nmod x {\n    use crate::a;\n}",
        ),
        ("crates/k/src/c/t.rs", "//! A test module.\nuse crate::a;"),
    ]
    .map(|(p, t)| (p.to_string(), t.to_string()));
    let graph = module_graph(&modules);
    let a = &graph["k"][&vec!["a".to_string()]];
    assert_eq!(a.iter().map(|m| m.join("::")).collect::<Vec<_>>(), ["", "b", "c"]);
    assert_eq!(import_cycles(&graph), ["k: import cycle in crate: a -> b -> a"]);
    assert_eq!(
        reaches(&graph, &modules, "k", &["b", "inner"], "libcontainer::"),
        ["k: crate::b::inner -> crate::b -> crate::c uses libcontainer::"]
    );
    assert!(reaches(&graph, &modules, "k", &["c"], "nothing::").is_empty());
    assert!(returns_string_error("fn x() -> Result<HashMap<String, u8>, String> {"));
    assert!(!returns_string_error("fn x() -> Result<HashMap<String, String>, Error> {"));
}
