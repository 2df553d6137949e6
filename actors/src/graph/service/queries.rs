//! The queries: match, traverse, shortest and all paths, each answered from
//! the tenant's cache or computed on its index and cached.

use super::*;

impl GraphService {
    // ------------------------------------------------------------ queries

    /// Answers from the cache, or runs `compute` on the index and caches it.
    async fn cached(
        &self,
        tenant: TenantId,
        key: String,
        deps: Deps,
        compute: impl FnOnce(&TenantIndex) -> Result<query::Found, GraphError>,
    ) -> Result<QueryAnswer, GraphError> {
        let started = Instant::now();
        let graph = self.tenant(tenant).await?;
        if let Some((_, answer)) = graph.cache.lock().entries.get(&key) {
            let mut answer = answer.clone();
            answer.from_cache = true;
            answer.execution_time_ms = started.elapsed().as_secs_f64() * 1000.0;
            return Ok(answer);
        }
        let (found, entities) = {
            let index = graph.index.read();
            let found = compute(&index)?;
            let entities: Vec<GraphEntity> =
                found.entities.iter().filter_map(|id| index.entities.get(id).cloned()).collect();
            (found, entities)
        };
        let relationships = self.relationships_in_order(tenant, &found.relationships).await?;
        let answer = QueryAnswer {
            entities,
            relationships,
            total_count: found.total,
            execution_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            from_cache: false,
            plan: found.plan,
            next_cursor: found.next_cursor,
            total_weight: found.total_weight,
            hops: found.total_weight.map(|_| found.relationships.len()),
            paths: (!found.paths.is_empty() || key.starts_with("allPaths")).then(|| {
                found
                    .paths
                    .iter()
                    .map(|p| PathView {
                        entity_ids: p.entities.clone(),
                        relationship_ids: p.relationships.clone(),
                        total_weight: p.total_weight,
                    })
                    .collect()
            }),
        };
        let mut cache = graph.cache.lock();
        if cache.entries.len() >= CACHE_CAPACITY {
            cache.entries.clear();
        }
        cache.entries.insert(key, (deps, answer.clone()));
        Ok(answer)
    }

    pub async fn match_entities(&self, tenant: TenantId, q: MatchQuery) -> Result<QueryAnswer, GraphError> {
        let refused = query::match_nul_problems(&q);
        if !refused.is_empty() {
            return Err(GraphError::Invalid(refused));
        }
        let key = format!("match:{}", serde_json::to_string(&q).unwrap_or_default());
        // Depends on the entity type and on every relationship and target type
        // named; a pattern without a type or without a target type may reach anything.
        let mut deps: BTreeSet<String> = q.entity_type.iter().cloned().collect();
        let mut open = q.entity_type.is_none();
        for p in &q.relationships {
            match (&p.relationship_type, &p.target_type) {
                (Some(r), Some(t)) => {
                    deps.insert(r.clone());
                    deps.insert(t.clone());
                }
                _ => open = true,
            }
        }
        let deps = (!open).then_some(deps);
        let from_store = self.store_candidates(tenant, &q, &key).await?;
        self.cached(tenant, key, deps, |index| {
            let (filters, patterns) = query::compile_match(&q, index).map_err(GraphError::Invalid)?;
            Ok(query::run_match(index, &q, &filters, &patterns, from_store))
        })
        .await
    }

    /// The store's answer to the match's most selective filter, unless the
    /// answer is cached already or no filter suits the store's index.
    async fn store_candidates(
        &self,
        tenant: TenantId,
        q: &MatchQuery,
        key: &str,
    ) -> Result<Option<query::StoreCandidates>, GraphError> {
        if !self.store.graph_has_property_index() {
            return Ok(None);
        }
        let Some(filter) = query::store_filter(q) else { return Ok(None) };
        if self.tenant(tenant).await?.cache.lock().entries.contains_key(key) {
            return Ok(None);
        }
        let ids = self
            .store
            .graph_entity_ids_where(tenant, q.entity_type.as_deref(), &filter.property, &filter.value)
            .await
            .map_err(GraphError::from)?;
        Ok(Some(query::StoreCandidates { label: format!("properties({} eq)", filter.property), ids }))
    }

    pub async fn traverse(&self, tenant: TenantId, q: TraverseQuery) -> Result<QueryAnswer, GraphError> {
        let mut problems = Vec::new();
        if q.max_depth.is_some_and(|d| !(1..=query::MAX_TRAVERSE_DEPTH).contains(&d)) {
            problems.push(format!("maxDepth must be between 1 and {}", query::MAX_TRAVERSE_DEPTH));
        }
        if q.limit.is_some_and(|l| !(1..=query::MAX_LIMIT).contains(&l)) {
            problems.push(format!("limit must be between 1 and {}", query::MAX_LIMIT));
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let key = format!("traverse:{}", serde_json::to_string(&q).unwrap_or_default());
        let start = q.start_id;
        self.cached(tenant, key, None, |index| query::run_traverse(index, &q).ok_or_else(|| not_found_entity(start)))
            .await
    }

    fn check_path_ends(index: &TenantIndex, q: &PathQuery) -> Result<(), GraphError> {
        let missing: Vec<String> = [("sourceId", q.source_id), ("targetId", q.target_id)]
            .into_iter()
            .filter(|(_, id)| !index.nodes.contains_key(id))
            .map(|(name, id)| format!("{name}: entity {id} not found"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(GraphError::NotFound(missing.join("; ")))
        }
    }

    pub async fn shortest_path(&self, tenant: TenantId, q: PathQuery) -> Result<QueryAnswer, GraphError> {
        let key = format!("shortestPath:{}", serde_json::to_string(&q).unwrap_or_default());
        self.cached(tenant, key, None, |index| {
            Self::check_path_ends(index, &q)?;
            let path = query::shortest_path(index, &q).ok_or_else(|| {
                GraphError::NotFound(format!(
                    "no path from {} to {} in direction {:?}{}",
                    q.source_id,
                    q.target_id,
                    q.direction,
                    if q.relationship_types.is_empty() {
                        String::new()
                    } else {
                        format!(" over {}", q.relationship_types.join(", "))
                    }
                ))
            })?;
            Ok(query::Found {
                total: path.entities.len() as u64,
                entities: path.entities,
                relationships: path.relationships,
                plan: "dijkstra:petgraph(stopAtTarget)".into(),
                total_weight: Some(path.total_weight),
                ..query::Found::default()
            })
        })
        .await
    }

    pub async fn all_paths(&self, tenant: TenantId, q: PathQuery) -> Result<QueryAnswer, GraphError> {
        let mut problems = Vec::new();
        if q.max_depth.is_some_and(|d| !(1..=query::MAX_ALL_PATHS_DEPTH).contains(&d)) {
            problems.push(format!("maxDepth must be between 1 and {}", query::MAX_ALL_PATHS_DEPTH));
        }
        if q.max_paths.is_some_and(|d| !(1..=query::MAX_ALL_PATHS).contains(&d)) {
            problems.push(format!("maxPaths must be between 1 and {}", query::MAX_ALL_PATHS));
        }
        if !problems.is_empty() {
            return Err(GraphError::Invalid(problems));
        }
        let key = format!("allPaths:{}", serde_json::to_string(&q).unwrap_or_default());
        self.cached(tenant, key, None, |index| {
            Self::check_path_ends(index, &q)?;
            let paths = query::all_paths(index, &q).unwrap_or_default();
            let mut entities = Vec::new();
            let mut relationships = Vec::new();
            for p in &paths {
                for e in &p.entities {
                    if !entities.contains(e) {
                        entities.push(*e);
                    }
                }
                for r in &p.relationships {
                    if !relationships.contains(r) {
                        relationships.push(*r);
                    }
                }
            }
            Ok(query::Found {
                total: paths.len() as u64,
                entities,
                relationships,
                plan: "dfs:petgraph(simplePaths, bounded)".into(),
                paths,
                ..query::Found::default()
            })
        })
        .await
    }
}
