//! Reads which top-level module of a crate names which other one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → (module it names → first file that names it).
pub struct ModuleGraph {
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

impl ModuleGraph {
    pub fn scan(root: &Path) -> Self {
        let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let pattern = regex::Regex::new(r"\bcrate::(\w+)").expect("pattern");
        let brace = regex::Regex::new(r"\bcrate::\{([^}]*)\}").expect("pattern");
        for file in rust_files(root) {
            let relative = file.strip_prefix(root).expect("under root").to_path_buf();
            let Some(module) = top_module(&relative) else { continue };
            if relative.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("readable source");
            let code = production_code(&text);
            let mut named: Vec<String> = pattern.captures_iter(&code).map(|c| c[1].to_string()).collect();
            for group in brace.captures_iter(&code) {
                named.extend(group[1].split(',').filter_map(|item| {
                    let head = item.trim().split("::").next()?.trim();
                    (!head.is_empty() && head.chars().all(|c| c.is_alphanumeric() || c == '_'))
                        .then(|| head.to_string())
                }));
            }
            for to in named {
                if to != module && is_module(root, &to) {
                    edges
                        .entry(module.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| relative.display().to_string());
                }
            }
        }
        Self { edges }
    }

    /// What `module` names, each with the first file that names it.
    pub fn dependencies_of(&self, module: &str) -> Vec<(String, String)> {
        self.edges.get(module).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    /// The strongly connected groups of more than one module, each sorted.
    pub fn loops(&self) -> Vec<Vec<String>> {
        let nodes: BTreeSet<&String> = self.edges.keys().chain(self.edges.values().flat_map(|m| m.keys())).collect();
        let mut groups = Vec::new();
        let mut seen = BTreeSet::new();
        for start in &nodes {
            if seen.contains(*start) {
                continue;
            }
            let forward = self.reachable(start);
            let group: Vec<String> = forward
                .iter()
                .filter(|n| self.reachable(n).contains(*start))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for member in &group {
                seen.insert((*member).clone());
            }
            if group.len() > 1 {
                groups.push(group);
            }
        }
        groups
    }

    /// Each loop with the edges inside it and the file that makes each edge.
    pub fn describe(&self, loops: &[Vec<String>]) -> String {
        let mut out = String::new();
        for group in loops {
            out.push_str(&format!("loop: {}\n", group.join(", ")));
            for from in group {
                for (to, file) in self.dependencies_of(from) {
                    if group.contains(&to) {
                        out.push_str(&format!("  {from} -> {to}   ({file})\n"));
                    }
                }
            }
        }
        out
    }

    fn reachable(&self, start: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::from([start.to_string()]);
        let mut stack = vec![start.to_string()];
        while let Some(at) = stack.pop() {
            for (to, _) in self.dependencies_of(&at) {
                if found.insert(to.clone()) {
                    stack.push(to);
                }
            }
        }
        found
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("readable directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `http/error.rs` → `http`, `startup.rs` → `startup`; the crate roots have none.
fn top_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

fn is_module(root: &Path, name: &str) -> bool {
    root.join(format!("{name}.rs")).is_file() || root.join(name).join("mod.rs").is_file()
}

/// The text without comments and without what follows a `#[cfg(test)]` (test
/// modules stand at the end of a file in this code base).
fn production_code(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" //").next().unwrap_or(line));
        code.push('\n');
    }
    code
}
