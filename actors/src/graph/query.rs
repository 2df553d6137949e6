//! The queries, run on a tenant's index: match with property filters and
//! relationship patterns, traversal, shortest path (Dijkstra), all paths.
//! They answer ids; the service turns them into records.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction as PgDirection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::index::{Edge, TenantIndex};
use crate::domain::{holds_nul, json_holds_nul, nul_refusal};

/// Deepest relationship pattern a match may ask for.
pub const MAX_PATTERN_DEPTH: u32 = 5;
pub const MAX_TRAVERSE_DEPTH: u32 = 10;
pub const MAX_ALL_PATHS_DEPTH: u32 = 6;
pub const MAX_ALL_PATHS: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    #[default]
    Outgoing,
    Incoming,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    Exists,
    Regex,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property: String,
    pub operator: Operator,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipPattern {
    #[serde(rename = "type", default)]
    pub relationship_type: Option<String>,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub min_weight: Option<f64>,
    #[serde(default)]
    pub max_weight: Option<f64>,
    /// How many hops the target may be away, 1 to 5 (1 when left out).
    #[serde(default)]
    pub depth: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchQuery {
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub relationships: Vec<RelationshipPattern>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Algorithm {
    #[default]
    Bfs,
    Dfs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraverseQuery {
    pub start_id: Uuid,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub relationship_types: Vec<String>,
    /// Only entities of these types are answered (all are walked through).
    #[serde(default)]
    pub entity_types: Vec<String>,
    #[serde(default)]
    pub max_depth: Option<u32>,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathQuery {
    pub source_id: Uuid,
    pub target_id: Uuid,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub relationship_types: Vec<String>,
    /// All paths only: most hops (4 when left out, at most 6).
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// All paths only: most paths (10 when left out, at most 100).
    #[serde(default)]
    pub max_paths: Option<u32>,
}

/// A filter checked once, its regular expression compiled.
pub struct CompiledFilter {
    filter: Filter,
    regex: Option<regex::Regex>,
}

fn is_comparable(v: &Value) -> bool {
    v.is_number() || v.is_string()
}

/// Every text of a match that holds a NUL character, named: the store's
/// index compares them in SQL, where PostgreSQL refuses NUL with an error.
/// Checked before anything reads, so both stores answer the same 400.
pub fn match_nul_problems(q: &MatchQuery) -> Vec<String> {
    fn text(problems: &mut Vec<String>, at: &str, t: Option<&str>) {
        if t.is_some_and(holds_nul) {
            problems.push(nul_refusal(at));
        }
    }
    fn filters(problems: &mut Vec<String>, label: &str, filters: &[Filter]) {
        for (i, f) in filters.iter().enumerate() {
            text(problems, &format!("{label}filters[{i}].property"), Some(&f.property));
            if json_holds_nul(&f.value) {
                problems.push(nul_refusal(&format!("{label}filters[{i}].value")));
            }
        }
    }
    let mut problems = Vec::new();
    text(&mut problems, "entityType", q.entity_type.as_deref());
    text(&mut problems, "cursor", q.cursor.as_deref());
    filters(&mut problems, "", &q.filters);
    for (i, p) in q.relationships.iter().enumerate() {
        let label = format!("relationships[{i}].");
        text(&mut problems, &format!("{label}type"), p.relationship_type.as_deref());
        text(&mut problems, &format!("{label}targetType"), p.target_type.as_deref());
        filters(&mut problems, &label, &p.filters);
    }
    problems
}

/// Compiles `filters`, adding every problem to `problems` under `label`.
pub fn compile_filters(label: &str, filters: &[Filter], problems: &mut Vec<String>) -> Vec<CompiledFilter> {
    let mut out = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let at = format!("{label}filters[{i}]");
        if f.property.is_empty() {
            problems.push(format!("{at}.property must not be empty"));
        }
        let mut regex = None;
        match f.operator {
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge if !is_comparable(&f.value) => {
                problems.push(format!("{at}.value must be a number or a string for {:?}", f.operator))
            }
            Operator::In if !f.value.is_array() => problems.push(format!("{at}.value must be an array for in")),
            Operator::StartsWith if !f.value.is_string() => {
                problems.push(format!("{at}.value must be a string for startsWith"))
            }
            Operator::Exists if !(f.value.is_boolean() || f.value.is_null()) => {
                problems.push(format!("{at}.value must be true or false for exists"))
            }
            Operator::Regex => {
                match f.value.as_str().map(|p| regex::RegexBuilder::new(p).size_limit(1 << 20).build()) {
                    Some(Ok(re)) => regex = Some(re),
                    Some(Err(e)) => problems.push(format!("{at}.value is not a regular expression: {e}")),
                    None => problems.push(format!("{at}.value must be a string for regex")),
                }
            }
            _ => {}
        }
        out.push(CompiledFilter { filter: f.clone(), regex });
    }
    out
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

impl CompiledFilter {
    pub fn matches(&self, properties: &Map<String, Value>) -> bool {
        let want = &self.filter.value;
        // A null property counts as absent, as the schema checks treat it.
        let Some(have) = properties.get(&self.filter.property).filter(|v| !v.is_null()) else {
            return match self.filter.operator {
                Operator::Ne => true,
                Operator::Exists => want == &Value::Bool(false),
                _ => false,
            };
        };
        match self.filter.operator {
            Operator::Eq => loosely_equal(have, want),
            Operator::Ne => !loosely_equal(have, want),
            Operator::Lt => compare(have, want) == Some(Ordering::Less),
            Operator::Le => matches!(compare(have, want), Some(Ordering::Less | Ordering::Equal)),
            Operator::Gt => compare(have, want) == Some(Ordering::Greater),
            Operator::Ge => matches!(compare(have, want), Some(Ordering::Greater | Ordering::Equal)),
            Operator::In => want.as_array().is_some_and(|xs| xs.iter().any(|x| loosely_equal(have, x))),
            Operator::Contains => match (have, want) {
                (Value::String(h), Value::String(w)) => h.contains(w.as_str()),
                (Value::Array(h), w) => h.iter().any(|x| loosely_equal(x, w)),
                (Value::Object(h), Value::String(w)) => h.contains_key(w),
                _ => false,
            },
            Operator::StartsWith => match (have, want) {
                (Value::String(h), Value::String(w)) => h.starts_with(w.as_str()),
                _ => false,
            },
            Operator::Exists => want != &Value::Bool(false),
            Operator::Regex => match (have, &self.regex) {
                (Value::String(h), Some(re)) => re.is_match(h),
                _ => false,
            },
        }
    }
}

/// What `types` names, as interned ids; `None` for "any type", and an empty
/// set when none of the names was ever used (nothing can match).
pub fn type_set(index: &TenantIndex, types: &[String]) -> Option<HashSet<u32>> {
    if types.is_empty() {
        return None;
    }
    Some(types.iter().filter_map(|t| index.rel_type_id(t)).collect())
}

/// The edges that can be walked from `node` in `direction` (an undirected
/// relationship both ways), with the entity at the other end.
pub fn steps<'a>(
    index: &'a TenantIndex,
    node: NodeIndex,
    direction: Direction,
    types: &'a Option<HashSet<u32>>,
) -> impl Iterator<Item = (EdgeIndex, &'a Edge, NodeIndex)> + 'a {
    // Edges stored the other way round only matter when the walk goes that
    // way or when some relationship is undirected; otherwise they are skipped
    // without being visited.
    let may_walk =
        |stored_way: Direction| direction == stored_way || direction == Direction::Both || index.has_undirected();
    let (out_limit, in_limit) = (
        if may_walk(Direction::Outgoing) { usize::MAX } else { 0 },
        if may_walk(Direction::Incoming) { usize::MAX } else { 0 },
    );
    let out = index.graph.edges_directed(node, PgDirection::Outgoing).take(out_limit).filter_map(move |e| {
        let ok = direction != Direction::Incoming || !e.weight().directed;
        ok.then_some((e.id(), e.weight(), e.target()))
    });
    let inc = index.graph.edges_directed(node, PgDirection::Incoming).take(in_limit).filter_map(move |e| {
        // A self-loop is already walked as an outgoing edge.
        let ok = (direction != Direction::Outgoing || !e.weight().directed) && e.source() != e.target();
        ok.then_some((e.id(), e.weight(), e.source()))
    });
    out.chain(inc).filter(move |(_, w, _)| types.as_ref().is_none_or(|t| t.contains(&w.rel_type)))
}

/// Ids found by a query: entities in answer order, relationships used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub entities: Vec<Uuid>,
    pub relationships: Vec<Uuid>,
    pub total: u64,
    pub next_cursor: Option<String>,
    pub plan: String,
    pub total_weight: Option<f64>,
    pub paths: Vec<FoundPath>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FoundPath {
    pub entities: Vec<Uuid>,
    pub relationships: Vec<Uuid>,
    pub total_weight: f64,
}

pub struct CompiledPattern {
    types: Option<HashSet<u32>>,
    direction: Direction,
    target_type: Option<String>,
    filters: Vec<CompiledFilter>,
    min_weight: f64,
    max_weight: f64,
    depth: u32,
}

pub fn compile_match(
    query: &MatchQuery,
    index: &TenantIndex,
) -> Result<(Vec<CompiledFilter>, Vec<CompiledPattern>), Vec<String>> {
    let mut problems = Vec::new();
    let filters = compile_filters("", &query.filters, &mut problems);
    let mut patterns = Vec::new();
    for (i, p) in query.relationships.iter().enumerate() {
        let label = format!("relationships[{i}].");
        let depth = p.depth.unwrap_or(1);
        if !(1..=MAX_PATTERN_DEPTH).contains(&depth) {
            problems.push(format!("{label}depth must be between 1 and {MAX_PATTERN_DEPTH}"));
        }
        let min_weight = p.min_weight.unwrap_or(f64::NEG_INFINITY);
        let max_weight = p.max_weight.unwrap_or(f64::INFINITY);
        if min_weight > max_weight {
            problems.push(format!("{label}minWeight is above maxWeight"));
        }
        let filters = compile_filters(&label, &p.filters, &mut problems);
        let types = type_set(index, p.relationship_type.as_slice());
        patterns.push(CompiledPattern {
            types,
            direction: p.direction,
            target_type: p.target_type.clone(),
            filters,
            min_weight,
            max_weight,
            depth,
        });
    }
    if let Some(limit) = query.limit {
        if !(1..=MAX_LIMIT).contains(&limit) {
            problems.push(format!("limit must be between 1 and {MAX_LIMIT}"));
        }
    }
    if query.cursor.as_deref().is_some_and(|c| Uuid::parse_str(c).is_err()) {
        problems.push("cursor is not one this API answered".into());
    }
    if problems.is_empty() {
        Ok((filters, patterns))
    } else {
        Err(problems)
    }
}

/// How each node of a pattern's walk was reached; kept between candidates
/// so that a match allocates it once.
type Seen = foldhash::HashMap<NodeIndex, Option<(NodeIndex, Uuid)>>;

/// The relationships of one way from `start` to an entity the pattern
/// accepts, or `None` when there is none within its depth.
fn pattern_path(index: &TenantIndex, start: NodeIndex, p: &CompiledPattern, seen: &mut Seen) -> Option<Vec<Uuid>> {
    seen.clear();
    seen.insert(start, None);
    let mut frontier = vec![start];
    for _ in 0..p.depth {
        let mut next = Vec::new();
        for node in frontier {
            for (_, edge, other) in steps(index, node, p.direction, &p.types) {
                if edge.weight < p.min_weight || edge.weight > p.max_weight || seen.contains_key(&other) {
                    continue;
                }
                seen.insert(other, Some((node, edge.id)));
                let id = index.graph[other];
                let accepted = index.entities.get(&id).is_some_and(|e| {
                    p.target_type.as_ref().is_none_or(|t| &e.entity_type == t)
                        && p.filters.iter().all(|f| f.matches(&e.properties))
                });
                if accepted {
                    let mut path = Vec::new();
                    let mut at = other;
                    while let Some(Some((prev, rel))) = seen.get(&at) {
                        path.push(*rel);
                        at = *prev;
                    }
                    path.reverse();
                    return Some(path);
                }
                next.push(other);
            }
        }
        frontier = next;
    }
    None
}

/// The ids the store found for one `eq` filter (`StoreCandidates::label`
/// says which), to start a match from instead of every entity of the type.
pub struct StoreCandidates {
    pub label: String,
    pub ids: Vec<Uuid>,
}

/// The first `eq` filter on a scalar value: the one worth sending to the
/// store's index. (Without statistics, equality is taken as the most selective.)
pub fn store_filter(query: &MatchQuery) -> Option<&Filter> {
    query
        .filters
        .iter()
        .find(|f| f.operator == Operator::Eq && (f.value.is_string() || f.value.is_number() || f.value.is_boolean()))
}

pub fn run_match(
    index: &TenantIndex,
    query: &MatchQuery,
    filters: &[CompiledFilter],
    patterns: &[CompiledPattern],
    from_store: Option<StoreCandidates>,
) -> Found {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT) as usize;
    let after = query.cursor.as_deref().and_then(|c| Uuid::parse_str(c).ok());
    let mut plan = Vec::new();
    let candidates: Box<dyn Iterator<Item = Uuid> + '_> = match (&query.entity_type, from_store) {
        // Ids in order, as the type index keeps them, so that paging agrees.
        (_, Some(found)) => {
            plan.push(format!("store:{} rows={}", found.label, found.ids.len()));
            let mut ids = found.ids;
            ids.sort();
            ids.dedup();
            let wanted_type = query.entity_type.clone();
            Box::new(ids.into_iter().filter(move |id| {
                wanted_type.as_ref().is_none_or(|t| index.entities.get(id).is_some_and(|e| &e.entity_type == t))
            }))
        }
        (Some(t), None) => {
            let set = index.by_type.get(t);
            plan.push(format!("index:entityType({t}) rows={}", set.map_or(0, |s| s.len())));
            Box::new(set.into_iter().flatten().copied())
        }
        (None, None) => {
            plan.push(format!("scan:allEntities rows={}", index.entities.len()));
            let mut all: Vec<Uuid> = index.entities.keys().copied().collect();
            all.sort();
            Box::new(all.into_iter())
        }
    };
    if !filters.is_empty() {
        plan.push(format!("filter:properties({})", filters.len()));
    }
    for p in patterns {
        plan.push(format!("expand:pattern(depth={}, petgraph)", p.depth));
    }
    let mut found = Found { plan: plan.join(" -> "), ..Found::default() };
    let mut seen = Seen::default();
    for id in candidates {
        let Some(entity) = index.entities.get(&id) else { continue };
        if !filters.iter().all(|f| f.matches(&entity.properties)) {
            continue;
        }
        let Some(&node) = index.nodes.get(&id) else { continue };
        let mut rels = Vec::new();
        let mut all = true;
        for p in patterns {
            match pattern_path(index, node, p, &mut seen) {
                Some(path) => rels.extend(path),
                None => {
                    all = false;
                    break;
                }
            }
        }
        if !all {
            continue;
        }
        found.total += 1;
        if after.is_some_and(|a| id <= a) {
            continue;
        }
        if found.entities.len() < limit {
            found.entities.push(id);
            found.relationships.extend(rels);
        } else if found.next_cursor.is_none() {
            found.next_cursor = found.entities.last().map(|l| l.to_string());
        }
    }
    found
}

pub fn run_traverse(index: &TenantIndex, query: &TraverseQuery) -> Option<Found> {
    let start = *index.nodes.get(&query.start_id)?;
    let types = type_set(index, &query.relationship_types);
    let max_depth = query.max_depth.unwrap_or(3);
    let limit = query.limit.unwrap_or(MAX_LIMIT) as usize;
    let mut found = Found {
        plan: format!("{:?}:petgraph(maxDepth={max_depth}, direction={:?})", query.algorithm, query.direction)
            .to_lowercase(),
        ..Found::default()
    };
    let wanted = |id: &Uuid| {
        query.entity_types.is_empty()
            || index.entities.get(id).is_some_and(|e| query.entity_types.iter().any(|t| t == &e.entity_type))
    };
    let mut seen = HashSet::from([start]);
    // How each entity was reached (the start by nothing): an answer cut by
    // `limit` holds the relationships that join the entities it lists to the
    // start, not those of every entity the walk counted.
    let mut reached_by: HashMap<NodeIndex, (NodeIndex, Uuid)> = HashMap::new();
    let mut joined = HashSet::from([start]);
    let mut queue = VecDeque::from([(start, 0u32)]);
    while let Some((node, depth)) = match query.algorithm {
        Algorithm::Bfs => queue.pop_front(),
        Algorithm::Dfs => queue.pop_back(),
    } {
        let id = index.graph[node];
        if wanted(&id) {
            found.total += 1;
            if found.entities.len() < limit {
                found.entities.push(id);
                // Up the way it was reached, until a part already given.
                let mut at = node;
                let mut way = Vec::new();
                while joined.insert(at) {
                    let Some(&(from, relationship)) = reached_by.get(&at) else { break };
                    way.push(relationship);
                    at = from;
                }
                found.relationships.extend(way.into_iter().rev());
            }
        }
        if depth >= max_depth {
            continue;
        }
        for (_, edge, other) in steps(index, node, query.direction, &types) {
            if seen.insert(other) {
                reached_by.insert(other, (node, edge.id));
                queue.push_back((other, depth + 1));
            }
        }
    }
    Some(found)
}

/// The cheapest path (`super::dijkstra`, from both ends). `None` when an
/// end is unknown or there is no path.
pub fn shortest_path(index: &TenantIndex, query: &PathQuery) -> Option<FoundPath> {
    let source = *index.nodes.get(&query.source_id)?;
    let target = *index.nodes.get(&query.target_id)?;
    let types = type_set(index, &query.relationship_types);
    let found = super::dijkstra::cheapest_path(index, source, target, query.direction, &types)?;
    Some(FoundPath {
        entities: found.nodes.iter().map(|n| index.graph[*n]).collect(),
        relationships: found.relationships,
        total_weight: found.cost,
    })
}

/// The state of the all-paths search.
struct PathSearch<'a> {
    index: &'a TenantIndex,
    target: NodeIndex,
    direction: Direction,
    types: Option<HashSet<u32>>,
    max_depth: usize,
    nodes: Vec<NodeIndex>,
    rels: Vec<(Uuid, f64)>,
    paths: Vec<FoundPath>,
    /// Bounds the whole search, so that a dense graph cannot keep a request busy.
    budget: u32,
}

impl PathSearch<'_> {
    fn walk(&mut self) {
        let Some(&at) = self.nodes.last() else { return };
        if at == self.target && !self.rels.is_empty() {
            self.paths.push(FoundPath {
                entities: self.nodes.iter().map(|n| self.index.graph[*n]).collect(),
                relationships: self.rels.iter().map(|r| r.0).collect(),
                total_weight: self.rels.iter().map(|r| r.1).sum(),
            });
            return;
        }
        if self.rels.len() >= self.max_depth || self.budget == 0 {
            return;
        }
        let next: Vec<(Uuid, f64, NodeIndex)> =
            steps(self.index, at, self.direction, &self.types).map(|(_, e, other)| (e.id, e.weight, other)).collect();
        for (rel, weight, other) in next {
            self.budget = self.budget.saturating_sub(1);
            if self.nodes.contains(&other) {
                continue;
            }
            self.nodes.push(other);
            self.rels.push((rel, weight));
            self.walk();
            self.nodes.pop();
            self.rels.pop();
        }
    }
}

/// Simple paths from source to target, shortest first (by hops, then weight),
/// at most `max_paths` of them, each at most `max_depth` hops.
pub fn all_paths(index: &TenantIndex, query: &PathQuery) -> Option<Vec<FoundPath>> {
    let source = *index.nodes.get(&query.source_id)?;
    let target = *index.nodes.get(&query.target_id)?;
    let mut search = PathSearch {
        index,
        target,
        direction: query.direction,
        types: type_set(index, &query.relationship_types),
        max_depth: query.max_depth.unwrap_or(4) as usize,
        nodes: vec![source],
        rels: Vec::new(),
        paths: Vec::new(),
        budget: 1_000_000,
    };
    search.walk();
    let mut paths = search.paths;
    paths.sort_by(|a, b| {
        a.relationships.len().cmp(&b.relationships.len()).then(a.total_weight.total_cmp(&b.total_weight))
    });
    paths.truncate(query.max_paths.unwrap_or(10) as usize);
    Some(paths)
}
