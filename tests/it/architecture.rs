//! The invariants of `ARCHITECTURE.md` that a reading of the source can check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's production code: everything before its first `#[cfg(test)]`, and nothing of a
/// `tests.rs` or a `*_conformance.rs` test module.
fn production_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_conformance.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The top-level module a file belongs to (`src/daemon/store.rs` → `daemon`).
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The crate's top-level modules each file names through `crate::…` (paths and `use` groups).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top_module(f);
        if from == "main" || from == "lib" {
            continue;
        }
        // Comments (docs link other modules) are not imports.
        let code: String = production_code(f)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(from.clone()).or_default();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_string())
                    .collect()
            } else {
                vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
                    .to_string()]
            };
            for n in names {
                if !n.is_empty() && n != from && n.chars().all(|c| c.is_lowercase() || c == '_') {
                    deps.insert(n);
                }
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_import_graph_has_no_cycle() {
    let graph = module_graph();
    // The scan sees the edges the architecture relies on.
    assert!(graph["control"].contains("policy"), "{graph:?}");
    assert!(graph["daemon"].contains("control"), "{graph:?}");
    assert!(graph["backtest"].contains("control"), "{graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}\n{graph:#?}", cycle.join(" → "));
    }
    // The pure core reaches no I/O module.
    for pure in ["control", "monitor", "policy", "detect"] {
        for io in ["daemon", "db", "registry", "exporter", "cli"] {
            assert!(!graph[pure].contains(io), "{pure} imports {io}");
        }
    }
}

#[test]
fn only_the_storage_layer_writes_sql_on_driftds_schema() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let storage = |p: &Path| {
        let rel = p
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        rel.starts_with("registry/") || rel == "daemon/store.rs"
    };
    let mut offenders = Vec::new();
    for f in files.iter().filter(|f| !storage(f)) {
        for (i, line) in production_code(f).lines().enumerate() {
            let sql = [
                "FROM driftd.",
                "INTO driftd.",
                "UPDATE driftd.",
                "JOIN driftd.",
            ];
            if sql.iter().any(|k| line.contains(k)) {
                offenders.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL on driftd's schema outside registry/ and daemon/store.rs:\n{}",
        offenders.join("\n")
    );
}
