//! The module dependency rules of DEVELOPERS.md, checked on the source text.
//!
//! A module `a` depends on `b` when a file under `a` names `crate::b` outside test
//! code. The rules: no loop between the top-level modules of `src/` or of
//! `actors/src/`, and `actors/src/domain` names nothing else of its crate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

mod module_graph;

use module_graph::ModuleGraph;
use std::path::Path;

fn graph_of(root: &str) -> ModuleGraph {
    ModuleGraph::scan(&Path::new(env!("CARGO_MANIFEST_DIR")).join(root))
}

#[test]
fn the_adapters_have_no_import_loop() {
    let graph = graph_of("src");
    let loops = graph.loops();
    assert!(loops.is_empty(), "import loops between the modules of src/:\n{}", graph.describe(&loops));
}

#[test]
fn the_core_has_no_import_loop() {
    let graph = graph_of("actors/src");
    let loops = graph.loops();
    assert!(loops.is_empty(), "import loops between the modules of actors/src/:\n{}", graph.describe(&loops));
}

#[test]
fn the_domain_imports_nothing_above_it() {
    let graph = graph_of("actors/src");
    let above: Vec<String> =
        graph.dependencies_of("domain").into_iter().map(|(to, why)| format!("{to} ({why})")).collect();
    assert!(above.is_empty(), "actors/src/domain imports: {}", above.join(", "));
}

#[test]
fn the_checker_finds_a_loop() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(dir.path().join("a")).expect("dir a");
    std::fs::write(dir.path().join("a/mod.rs"), "use crate::b::Thing;\n").expect("a");
    std::fs::write(dir.path().join("b.rs"), "pub fn f() { crate::a::g() }\n#[cfg(test)]\nmod t { use crate::c; }\n")
        .expect("b");
    std::fs::write(dir.path().join("c.rs"), "// crate::a is only named in a comment\n").expect("c");
    let graph = ModuleGraph::scan(dir.path());
    assert_eq!(graph.loops(), vec![vec!["a".to_string(), "b".to_string()]]);
    assert!(graph.dependencies_of("b").iter().all(|(to, _)| to != "c"), "test code does not count");
    assert!(graph.dependencies_of("c").is_empty(), "comments do not count");
}

/// A route's path is written in its `#[utoipa::path]` and nowhere else in the
/// HTTP layer: scopes, route lists and the public-path list derive from it.
#[test]
fn each_path_is_written_once_in_the_http_layer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let literal = regex::Regex::new(r#""(/(?:api|health|hubs)[^"\s]*)""#).expect("pattern");
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for entry in std::fs::read_dir(&dir).expect("src/http").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for found in literal.captures_iter(code) {
            seen.entry(found[1].to_string()).or_default().push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    assert!(seen.len() > 40, "the check found the paths ({} found)", seen.len());
    let repeated: Vec<String> =
        seen.iter().filter(|(_, files)| files.len() > 1).map(|(path, files)| format!("{path} in {files:?}")).collect();
    assert!(repeated.is_empty(), "paths written more than once: {repeated:#?}");
}
