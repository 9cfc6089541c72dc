//! No file under `src/` may import one that imports it back, directly or through others.
//!
//! The test parses every module file of the library crate (from `src/lib.rs` down its `mod`
//! declarations) with `syn`, collects the crate-local paths each file names (`use crate::..`,
//! `use super::..`, `self::..`, child modules, and the same paths written inline, in macro
//! input too), resolves each to the file that defines it, and looks for strongly connected
//! components in that file graph.
//!
//! What counts as an import, and why:
//! - a `pub use` (a re-export) is not an edge of the file that holds it: a path through it
//!   is resolved to the file the item really lives in, so a `mod.rs` may re-export its
//!   children's items while they use items defined in that `mod.rs`;
//! - `mod x;` declarations are not edges;
//! - a file naming an item of its own parent module (`super::Error` in `bbolt/read.rs`
//!   resolves to `bbolt/mod.rs`), or of any ancestor, is not an edge: a directory module's
//!   `mod.rs` holds what its children share and dispatches to them; a cycle through
//!   another module's files still counts;
//! - items under `#[cfg(test)]` are skipped: test modules may reach anywhere;
//! - doc links (`[`super::x`]`) are not imports;
//! - `src/main.rs` is the binary's own crate root and reaches the library only as `kvd::`, so
//!   it cannot close a cycle and is not read.
//!
//! `ALLOWED` lists the cycles other work is still removing; each entry must still exist (a
//! stale entry fails the test, so the list only shrinks).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// Cycles that are known and being removed elsewhere. A cycle found must lie within one
/// entry; an entry that no longer overlaps any cycle must be deleted.
const ALLOWED: &[(&[&str], &str)] = &[];

/// A module: the file it lives in and its child modules.
#[derive(Debug, Default)]
struct Module {
    file: String,
    children: BTreeSet<String>,
    /// Names brought into scope by `use` (re-exported or not): name -> absolute path.
    imports: BTreeMap<String, Vec<String>>,
}

/// The crate's module tree.
#[derive(Debug, Default)]
struct Tree {
    modules: BTreeMap<Vec<String>, Module>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(src_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

/// Where `mod name;` declared in `file` (module path `at`) lives.
fn child_file(file: &Path, name: &str) -> PathBuf {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = file.parent().unwrap_or(Path::new("."));
    let base = if matches!(stem, "lib" | "mod" | "main") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    let flat = base.join(format!("{name}.rs"));
    if flat.is_file() {
        flat
    } else {
        base.join(name).join("mod.rs")
    }
}

/// Files and their parsed contents, keyed by path relative to `src/`.
type Sources = BTreeMap<String, syn::File>;

impl Tree {
    fn load(root: &Path, sources: &mut Sources) -> Tree {
        let mut tree = Tree::default();
        let file = parse(root);
        tree.add_items(&file.items, Vec::new(), root, sources);
        sources.insert(rel(root), file);
        tree
    }

    fn add_items(
        &mut self,
        items: &[syn::Item],
        at: Vec<String>,
        file: &Path,
        sources: &mut Sources,
    ) {
        self.modules.entry(at.clone()).or_default().file = rel(file);
        for item in items {
            match item {
                syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                    let name = m.ident.to_string();
                    self.modules
                        .entry(at.clone())
                        .or_default()
                        .children
                        .insert(name.clone());
                    let mut child = at.clone();
                    child.push(name.clone());
                    match &m.content {
                        Some((_, inner)) => self.add_items(inner, child, file, sources),
                        None => {
                            let path = child_file(file, &name);
                            let parsed = parse(&path);
                            self.add_items(&parsed.items, child, &path, sources);
                            sources.insert(rel(&path), parsed);
                        }
                    }
                }
                syn::Item::Use(u) if !is_cfg_test(&u.attrs) => {
                    for (name, path) in use_leaves(&u.tree) {
                        if let Some(abs) = self.absolute(&at, &path) {
                            if name != "*" && name != "self" {
                                self.modules
                                    .entry(at.clone())
                                    .or_default()
                                    .imports
                                    .insert(name, abs);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `path` as written in module `at`, made absolute; `None` for other crates.
    fn absolute(&self, at: &[String], path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => at.to_vec(),
            "super" => {
                let mut p = at.to_vec();
                p.pop();
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    p.pop();
                    rest = &rest[1..];
                }
                p.extend(rest.iter().cloned());
                return Some(p);
            }
            _ => {
                // A child module of `at` (2018 paths are relative to the current module).
                let children = &self.modules.get(at)?.children;
                if !children.contains(first) {
                    return None;
                }
                let mut p = at.to_vec();
                p.push(first.clone());
                p
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path ends in, following imports (re-exports) by name.
    fn resolve(&self, path: &[String], depth: usize) -> Vec<String> {
        let mut at: Vec<String> = Vec::new();
        for (i, seg) in path.iter().enumerate() {
            let Some(m) = self.modules.get(&at) else {
                break;
            };
            if m.children.contains(seg) {
                at.push(seg.clone());
                continue;
            }
            if let Some(target) = m.imports.get(seg) {
                if depth < 16 {
                    let mut p = target.clone();
                    p.extend(path[i + 1..].iter().cloned());
                    return self.resolve(&p, depth + 1);
                }
            }
            break;
        }
        at
    }

    fn file_of(&self, module: &[String]) -> Option<&str> {
        self.modules.get(module).map(|m| m.file.as_str())
    }
}

/// The leaves of a use tree: (name it binds, path as written).
fn use_leaves(tree: &syn::UseTree) -> Vec<(String, Vec<String>)> {
    fn walk(t: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
        match t {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                if name == "self" {
                    let bound = prefix.last().cloned().unwrap_or_default();
                    out.push((bound, prefix.clone()));
                } else {
                    let mut p = prefix.clone();
                    p.push(name.clone());
                    out.push((name, p));
                }
            }
            syn::UseTree::Rename(r) => {
                let mut p = prefix.clone();
                if r.ident != "self" {
                    p.push(r.ident.to_string());
                }
                out.push((r.rename.to_string(), p));
            }
            syn::UseTree::Glob(_) => out.push(("*".to_string(), prefix.clone())),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// Collects the crate-local paths one module names.
struct Collector<'t> {
    tree: &'t Tree,
    at: Vec<String>,
    /// (absolute path, as written) of every reference.
    found: Vec<(Vec<String>, Vec<String>)>,
}

impl Collector<'_> {
    fn note(&mut self, written: Vec<String>) {
        if let Some(abs) = self.tree.absolute(&self.at, &written) {
            self.found.push((abs, written));
        }
    }

    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            if let TokenTree::Group(g) = &trees[i] {
                self.scan_tokens(g.stream());
                i += 1;
                continue;
            }
            let starts = matches!(&trees[i], TokenTree::Ident(id) if id == "crate" || id == "super" || id == "self");
            let preceded_by_colons =
                i >= 1 && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == ':');
            if !starts || preceded_by_colons {
                i += 1;
                continue;
            }
            let mut path = vec![trees[i].to_string()];
            let mut j = i + 1;
            // `:: ident`, as many times as it repeats.
            while let (
                Some(TokenTree::Punct(a)),
                Some(TokenTree::Punct(b)),
                Some(TokenTree::Ident(id)),
            ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
            {
                if a.as_char() != ':' || b.as_char() != ':' {
                    break;
                }
                path.push(id.to_string());
                j += 3;
            }
            if path.len() > 1 {
                self.note(path);
            }
            i = j;
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => &[],
        };
        if is_cfg_test(attrs) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        // Other files are collected on their own; inline modules are part of this file.
        if let Some((_, items)) = &m.content {
            self.at.push(m.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.at.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        // A re-export is resolved through, not counted as an import of this file.
        if !matches!(u.vis, syn::Visibility::Inherited) {
            return;
        }
        for (_, path) in use_leaves(&u.tree) {
            self.note(path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            self.note(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// The file graph: file -> imported file -> one path that shows it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn graph() -> Graph {
    let mut sources = Sources::new();
    let tree = Tree::load(&src_dir().join("lib.rs"), &mut sources);
    let mut modules_of: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    for (path, m) in &tree.modules {
        modules_of
            .entry(m.file.as_str())
            .or_default()
            .push(path.clone());
    }
    let mut graph = Graph::new();
    for (file, parsed) in &sources {
        // The file's outermost module; inline modules are entered by the visitor.
        let Some(at) = modules_of
            .get(file.as_str())
            .and_then(|ms| ms.iter().min_by_key(|m| m.len()))
        else {
            continue;
        };
        let mut c = Collector {
            tree: &tree,
            at: at.clone(),
            found: Vec::new(),
        };
        for item in &parsed.items {
            c.visit_item(item);
        }
        let edges = graph.entry(file.clone()).or_default();
        for (abs, written) in c.found {
            let target = tree.resolve(&abs, 0);
            // A module's own parent (or any ancestor) is where its shared types live.
            if at.starts_with(&target) {
                continue;
            }
            let Some(to) = tree.file_of(&target) else {
                continue;
            };
            if to != file {
                edges
                    .entry(to.to_string())
                    .or_insert_with(|| written.join("::"));
            }
        }
    }
    graph
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        on_stack: BTreeSet<&'g str>,
        stack: Vec<&'g str>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn connect<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(edges) = s.graph.get(v) {
            for w in edges.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    connect(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            connect(&mut s, v);
        }
    }
    s.out
}

/// The imports inside one component, as `a.rs -> b.rs (path)` lines.
fn explain(graph: &Graph, component: &BTreeSet<String>) -> String {
    let mut lines = Vec::new();
    for from in component {
        for (to, via) in graph.get(from).into_iter().flatten() {
            if component.contains(to) {
                lines.push(format!("    {from} -> {to} (via {via})"));
            }
        }
    }
    lines.join("\n")
}

#[test]
fn no_import_cycles_between_files() {
    let graph = graph();
    assert!(
        graph.len() > 50,
        "the checker found only {} files under src/",
        graph.len()
    );
    let found = cycles(&graph);
    let mut problems = Vec::new();
    for component in &found {
        let allowed = ALLOWED
            .iter()
            .any(|(files, _)| component.iter().all(|f| files.contains(&f.as_str())));
        if !allowed {
            problems.push(format!(
                "import cycle between {}:\n{}",
                component.iter().cloned().collect::<Vec<_>>().join(", "),
                explain(&graph, component)
            ));
        }
    }
    for (files, why) in ALLOWED {
        let still = found
            .iter()
            .any(|c| c.iter().any(|f| files.contains(&f.as_str())));
        if !still {
            problems.push(format!(
                "the allowed cycle \"{why}\" ({}) is gone: delete its ALLOWED entry in tests/no_cycles.rs",
                files.join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

/// The checker itself: it must see the imports it claims to see.
#[test]
fn the_checker_sees_imports_of_every_kind() {
    let graph = graph();
    let has = |from: &str, to: &str| graph.get(from).is_some_and(|e| e.contains_key(to));
    // `use super::x` and `use crate::x::y`
    assert!(has("tls/acceptor.rs", "tls/material.rs"));
    assert!(
        has("tls/acceptor.rs", "config/mod.rs") || has("tls/acceptor.rs", "config/security.rs")
    );
    // a path through a `pub use` re-export lands on the defining file: `crate::tls::ServerTls`
    // is `tls/acceptor.rs`, and the re-export itself is no import of `tls/mod.rs`
    assert!(has("server/mod.rs", "tls/acceptor.rs"));
    assert!(!has("tls/mod.rs", "tls/acceptor.rs"));
    // an inline path (`crate::compactor::run(..)`)
    assert!(has("server/mod.rs", "compactor.rs"));
    // paths inside a macro's input
    let mut tree = Tree::default();
    tree.modules.entry(vec!["m".into()]).or_default().file = "m.rs".into();
    let mut c = Collector {
        tree: &tree,
        at: vec!["m".into()],
        found: Vec::new(),
    };
    let mac: syn::Macro =
        syn::parse_str("info!(a = %crate::x::y(1), b = ?super::z, \"{}\", c::d)").expect("macro");
    c.scan_tokens(mac.tokens);
    let written: Vec<String> = c.found.iter().map(|(_, w)| w.join("::")).collect();
    assert_eq!(written, ["crate::x::y", "super::z"]);
    // a file's own parent module is not an import
    assert!(!has("bbolt/read.rs", "bbolt/mod.rs"));
    let mut g = Graph::new();
    g.entry("a.rs".into())
        .or_default()
        .insert("b.rs".into(), "x".into());
    g.entry("b.rs".into())
        .or_default()
        .insert("c.rs".into(), "y".into());
    g.entry("c.rs".into())
        .or_default()
        .insert("a.rs".into(), "z".into());
    g.entry("c.rs".into())
        .or_default()
        .insert("d.rs".into(), "w".into());
    let found = cycles(&g);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].iter().map(String::as_str).collect::<Vec<_>>(),
        ["a.rs", "b.rs", "c.rs"]
    );
}
