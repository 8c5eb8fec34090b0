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

/// A file's production code: everything before its first `#[cfg(test)]` that opens a test
/// block (a `#[cfg(test)] mod x;` line only declares a test file and is skipped), and nothing
/// of a `tests.rs` or a `*_conformance.rs` test module.
fn production_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_conformance.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]").map(|i| i + from) {
        let after = text[i + "#[cfg(test)]".len()..].trim_start();
        let declares_file = after
            .lines()
            .next()
            .is_some_and(|l| l.trim_start().starts_with("mod ") && l.trim_end().ends_with(';'));
        if !declares_file {
            return text[..i].to_string();
        }
        from = i + 1;
    }
    text
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
}

/// The pure core: events in, decisions out, time passed in (ARCHITECTURE.md, Invariants).
const CORE: &[&str] = &[
    "control",
    "policy",
    "monitor",
    "detect",
    "feature_drift",
    "estimate",
    "shadow",
];

/// The pure modules the core stands on: its own types, configuration types, durations, the
/// PRNG. Like the core, none of them does I/O (but `config/load.rs`, see [`PURE_EXCEPT`]).
const CORE_GROUND: &[&str] = &["domain", "config", "span", "splitmix"];

/// Every other top-level module: each does I/O (PostgreSQL, HTTP, files, the terminal,
/// libtorch, the async runtime) or drives something that does.
const IO_MODULES: &[&str] = &[
    "outcomes",
    "train",
    "serve",
    "registry",
    "daemon",
    "exporter",
    "db",
    "cli",
    "backtest",
    "catalog",
    "demo",
    "generate",
    "progress",
    "systemd",
    "telemetry",
    "auth",
    "api_error",
];

/// Files of the pure modules that may do what the rest may not: reading the config file
/// and the secret files it names, once, at load.
const PURE_EXCEPT: &[&str] = &["config/load.rs"];

/// What no pure file names: the database, the async runtime, libtorch, HTTP, files,
/// processes, the environment and the wall clock.
const IMPURE: &[&str] = &[
    "sqlx",
    "tokio",
    "tch::",
    "axum",
    "hyper",
    "reqwest",
    "std::fs",
    "File::",
    "std::process",
    "std::env",
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "async ",
    ".await",
];

fn rel(p: &Path) -> String {
    p.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// Whether `line` names `word`; a word that starts with a letter must start a name there
/// (`Scratch::` does not name `tch::`; `x.await` names `.await`).
fn names(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word)
        .any(|(i, _)| !word.starts_with(ident) || !line[..i].chars().next_back().is_some_and(ident))
}

#[test]
fn every_module_is_classified_pure_or_io() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let classified: BTreeSet<&str> = CORE
        .iter()
        .chain(CORE_GROUND)
        .chain(IO_MODULES)
        .copied()
        .collect();
    assert_eq!(
        declared, classified,
        "each top-level module is in CORE, CORE_GROUND or IO_MODULES"
    );
}

#[test]
fn the_core_and_its_ground_do_no_io_and_import_no_io_module() {
    let graph = module_graph();
    // The core's own types import nothing of the crate: they are the ground floor.
    assert!(
        graph["domain"].is_empty(),
        "domain imports {:?}",
        graph["domain"]
    );
    for m in CORE.iter().chain(CORE_GROUND) {
        for d in &graph[*m] {
            assert!(
                CORE.contains(&d.as_str()) || CORE_GROUND.contains(&d.as_str()),
                "{m} imports {d}, which is not pure"
            );
        }
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offenders = Vec::new();
    let mut seen = 0;
    for f in &files {
        let top = top_module(f);
        let pure = CORE.contains(&top.as_str()) || CORE_GROUND.contains(&top.as_str());
        if !pure || PURE_EXCEPT.contains(&rel(f).as_str()) {
            continue;
        }
        seen += 1;
        for (i, line) in blank_literals(&production_code(f)).lines().enumerate() {
            if let Some(word) = IMPURE.iter().find(|w| names(line, w)) {
                offenders.push(format!(
                    "src/{}:{}: `{word}`: {}",
                    rel(f),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(seen > 30, "the scan sees the core's files ({seen})");
    assert!(
        offenders.is_empty(),
        "I/O, async or the wall clock in the pure core:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_purity_scan_sees_what_it_forbids() {
    let code = "use sqlx::PgPool;\nfn f() { let _ = \"tokio\"; } // std::fs\nlet _ = Scratch::default();\n";
    let lines: Vec<String> = blank_literals(code).lines().map(String::from).collect();
    let hits: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| IMPURE.iter().any(|w| names(l, w)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits,
        vec![0],
        "a use is seen; a string, a comment or a longer name is not"
    );
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

#[test]
fn only_the_outcomes_module_queries_the_users_table() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offenders = Vec::new();
    let mut seen_inside = 0;
    for f in &files {
        let rel = f
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        for (i, line) in production_code(f).lines().enumerate() {
            // The reference table's name in SQL text, or SQL built from `[source]`'s table.
            let sql = [
                "FROM outcomes",
                "INTO outcomes",
                "UPDATE outcomes",
                "FROM {table}",
                "INTO {table}",
                "UPDATE {table}",
            ];
            if sql.iter().any(|k| line.contains(k)) {
                if rel.starts_with("outcomes/") {
                    seen_inside += 1;
                } else {
                    offenders.push(format!("{rel}:{}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    assert!(seen_inside > 5, "the scan finds the source's own queries");
    assert!(
        offenders.is_empty(),
        "SQL on the outcomes table outside src/outcomes/:\n{}",
        offenders.join("\n")
    );
}

/// Every line of every source file (tests included), as (path below src/, line, text).
fn every_source_line() -> Vec<(String, usize, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        out.extend(
            text.lines()
                .enumerate()
                .map(|(i, l)| (rel.clone(), i + 1, l.to_string())),
        );
    }
    out
}

#[test]
fn only_the_exporter_names_metric_labels_or_prometheus() {
    // Each subsystem's metrics struct (exporter/metrics.rs) owns its label names and their
    // order; everyone else reports through its methods.
    let (inside, outside): (Vec<_>, Vec<_>) = every_source_line()
        .into_iter()
        .filter(|(_, _, l)| l.contains("with_label_values") || l.contains("prometheus::"))
        .partition(|(rel, _, _)| rel.starts_with("exporter/"));
    assert!(
        inside.len() > 10,
        "the scan finds the exporter's own labels"
    );
    let outside: Vec<String> = outside
        .iter()
        .map(|(rel, i, l)| format!("src/{rel}:{i}: {}", l.trim()))
        .collect();
    assert!(
        outside.is_empty(),
        "metric labels or the prometheus crate outside src/exporter/ (add an intent method to \
         the subsystem's metrics struct instead):\n{}",
        outside.join("\n")
    );
}

/// The storage interface's public surface in `code`: each `pub fn` signature (up to its
/// body) and each `pub` field, with its line.
fn public_surface(code: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.starts_with("pub fn ") || t.starts_with("pub async fn ") {
            let mut sig = String::new();
            let start = i;
            while i < lines.len() {
                sig.push_str(lines[i].trim());
                sig.push(' ');
                if lines[i].contains('{') || lines[i].trim_end().ends_with(';') {
                    break;
                }
                i += 1;
            }
            out.push((start + 1, sig));
        } else if t.starts_with("pub ")
            && t["pub ".len()..]
                .split(':')
                .next()
                .is_some_and(|f| !f.is_empty() && f.chars().all(|c| c.is_lowercase() || c == '_'))
        {
            out.push((i + 1, t.to_string()));
        }
        i += 1;
    }
    out
}

/// Whether `ty` holds a tuple with two or more string elements (`(i64, String, String)`).
fn has_tuple_of_strings(ty: &str) -> bool {
    let c: Vec<char> = ty.chars().collect();
    let mut opens = Vec::new();
    for (i, &ch) in c.iter().enumerate() {
        match ch {
            '(' => opens.push(i),
            ')' => {
                let Some(o) = opens.pop() else { continue };
                let inner: String = c[o + 1..i].iter().collect();
                let strings = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|e| *e == "String" || (e.starts_with('&') && e.ends_with("str")))
                    .count();
                if strings >= 2 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[test]
fn the_storage_interface_speaks_in_types() {
    let mut files = Vec::new();
    rust_files(&src().join("registry"), &mut files);
    files.push(src().join("daemon/store.rs"));
    // Read back for reports only (`models show -o json`, the demo): kept as stored.
    let allowed = [
        "runs.rs: pub candidates: serde_json::Value,",
        "progress.rs: pub candidates: serde_json::Value,",
    ];
    let mut offenders = Vec::new();
    let mut seen = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for (line, item) in public_surface(&production_code(f)) {
            seen += 1;
            let returns = item.split("->").nth(1).unwrap_or("");
            let typ = if item.contains("fn ") {
                returns
            } else {
                item.as_str()
            };
            let json = item.contains("serde_json::Value") || item.contains("JsonValue");
            if (json || has_tuple_of_strings(typ))
                && !allowed.contains(&format!("{name}: {}", item.trim()).as_str())
            {
                offenders.push(format!("{}:{line}: {}", f.display(), item.trim()));
            }
        }
    }
    assert!(
        seen > 30,
        "the scan finds the storage interface ({seen} items)"
    );
    assert!(has_tuple_of_strings(
        "Result<Option<(i64, String, String)>, sqlx::Error> {"
    ));
    assert!(!has_tuple_of_strings(
        "Result<Vec<(String, i64)>, sqlx::Error>"
    ));
    assert!(
        offenders.is_empty(),
        "raw JSON or tuples of strings across the registry/store interface (parse and \
         serialise at the storage edge; pass enums and structs):\n{}",
        offenders.join("\n")
    );
}

/// `code` with the inside of every comment, string and char literal blanked (newlines kept),
/// so that braces in them do not count. Good enough for this codebase, not a Rust lexer:
/// handles `//` and nested `/* */` comments, `"…"` with escapes, raw strings `r#"…"#`
/// (also `b`/`br`/`c` prefixes), and tells char literals (`'{'`, `'\''`) from lifetimes.
fn blank_literals(code: &str) -> String {
    let c: Vec<char> = code.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in &mut out[from..to.min(c.len())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let next = |k: usize| c.get(i + k).copied();
        if c[i] == '/' && next(1) == Some('/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next(1) == Some('*') {
            let (mut depth, mut j) = (0, i);
            while j < c.len() {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))))
            && {
                let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
                c.get(i + 1 + hashes) == Some(&'"')
            }
        {
            // A raw string: no escapes, ends at `"` followed by as many `#` as it opened with.
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            let open = i + 1 + hashes;
            let mut j = open + 1;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            blank(&mut out, open + 1, j);
            i = j + 1 + hashes;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if c[i] == '\'' && (next(1) == Some('\\') || next(2) == Some('\'')) {
            // A char literal (`'x'`, `'\n'`, `'\u{7f}'`); a lifetime (`'a`) has no closing quote.
            let mut j = i + 1;
            while j < c.len() && c[j] != '\'' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// The name of the function a line starts (`fn name`, after `pub`, `pub(crate)`, `async`,
/// `const`, `unsafe`, `extern "C"`, `default`), if it starts one.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "fn" => {
                let name: String = words
                    .next()?
                    .chars()
                    .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                    .collect();
                return (!name.is_empty()).then_some(name);
            }
            "pub" | "async" | "const" | "unsafe" | "default" => {}
            w if w.starts_with("pub(") => {}
            "extern" => {
                // The ABI string, blanked to `"  "` (possibly split in two words).
                while words
                    .peek()
                    .is_some_and(|w| w.starts_with('"') || w.ends_with('"'))
                {
                    words.next();
                }
            }
            _ => return None,
        }
    }
    None
}

/// Every function of `code` that has a body: its name, first line (1-based, the `fn` line)
/// and length in lines, from the `fn` line to the line of its closing brace. A function whose
/// end the scan cannot find has length `usize::MAX`, so that it is reported, not skipped.
fn function_lengths(code: &str) -> Vec<(String, usize, usize)> {
    let code = blank_literals(code);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        // The body's `{` is the first one outside the signature's parentheses and brackets
        // (`[u8; 4]` has a `;`); a `;` before it is a declaration without a body.
        let (mut parens, mut depth, mut opened) = (0i32, 0i32, false);
        let mut len = usize::MAX;
        'scan: for (l, text) in lines.iter().enumerate().skip(start) {
            let text = if l == start {
                &text[text.find("fn").unwrap()..]
            } else {
                text
            };
            for ch in text.chars() {
                match ch {
                    '(' | '[' => parens += 1,
                    ')' | ']' => parens -= 1,
                    ';' if !opened && parens == 0 => {
                        len = 0;
                        break 'scan;
                    }
                    '{' if opened || parens == 0 => {
                        opened = true;
                        depth += 1;
                    }
                    '}' if opened => {
                        depth -= 1;
                        if depth == 0 {
                            len = l - start + 1;
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if len > 0 {
            out.push((name, start + 1, len));
        }
    }
    out
}

#[test]
fn the_function_scan_skips_literals_comments_and_declarations() {
    let code = r##"
pub(crate) async fn one(x: [u8; 4]) -> &'static str {
    let _ = '{'; let _ = '\''; let _ = "}\"}"; // }
    let _ = r#"}"#; /* } /* } */ } */
    "x"
}
fn decl(&self);
const N: usize = 3;
impl<'a> S<'a> {
    fn two<'b>(&'b self) where Self: Sized {
        let f = |a: i32| { a };
    }
}
"##;
    assert_eq!(
        function_lengths(code),
        vec![("one".to_string(), 2, 5), ("two".to_string(), 10, 3)]
    );
}

/// Longest a production function may be (ARCHITECTURE.md, Invariants).
const MAX_FN_LINES: usize = 100;

#[test]
fn no_production_function_is_longer_than_100_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut seen = 0;
    let mut offenders = Vec::new();
    for f in &files {
        for (name, line, len) in function_lengths(&production_code(f)) {
            seen += 1;
            let rel = f.strip_prefix(src()).unwrap().display().to_string();
            if len == usize::MAX {
                offenders.push(format!(
                    "src/{rel}:{line}: fn {name} has no closing brace the scan can find"
                ));
            } else if len > MAX_FN_LINES {
                offenders.push(format!("src/{rel}:{line}: fn {name} is {len} lines"));
            }
        }
    }
    // The scan sees the crate's functions (hundreds), not a handful.
    assert!(seen > 300, "only {seen} functions found");
    assert!(
        offenders.is_empty(),
        "production functions longer than {MAX_FN_LINES} lines (split them by stage):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn only_the_exporter_uses_the_prometheus_client() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offenders = Vec::new();
    let mut seen_inside = 0;
    for f in &files {
        let code = blank_literals(&production_code(f));
        let uses = code.lines().filter(|l| l.contains("prometheus::")).count();
        if rel(f).starts_with("exporter/") {
            seen_inside += uses;
        } else if uses > 0 {
            offenders.push(format!("src/{}", rel(f)));
        }
    }
    assert!(seen_inside > 0, "the scan finds the exporter's own use");
    assert!(
        offenders.is_empty(),
        "the Prometheus client outside src/exporter/: {offenders:?}"
    );
}

#[test]
fn the_daemon_trains_only_on_a_lower_priority_thread_of_its_own() {
    let mut files = Vec::new();
    rust_files(&src().join("daemon"), &mut files);
    let mut calls = 0;
    let mut offenders = Vec::new();
    for f in &files {
        let code = blank_literals(&production_code(f));
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.contains("run_update(") || line.contains("fn run_update") {
                continue;
            }
            calls += 1;
            // The call sits in a `niced::run` closure opened a few lines above.
            let inside = lines[i.saturating_sub(5)..i]
                .iter()
                .any(|l| l.contains("niced::run(") && l.contains("move ||"));
            if !inside {
                offenders.push(format!("src/{}:{}", rel(f), i + 1));
            }
        }
    }
    assert!(calls > 0, "the scan finds the daemon's training call");
    assert!(
        offenders.is_empty(),
        "train::run_update called outside niced::run: {offenders:?}"
    );
}
