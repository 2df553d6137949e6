//! /api/v1/clusters: the simulated (or registered) clusters and their nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Environment, NodeMetrics};
use hotswap_actors::orchestrator::{ClusterSummary, NodeFilter, NodeView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::deployment_dto::EnvironmentName;
use super::responses::Protected;
use super::route_table::{api_module, Access};
use crate::auth::{RequireRole, Tenant};
use crate::web::query_params::Query;
use crate::web::AppState;
use crate::web::{ApiError, ErrorBody};

/// Bounds the work one metrics query can ask for.
const MAX_POINTS: i64 = 10_000;
/// Nodes per page of a cluster, by default and at most.
const DEFAULT_NODE_PAGE: u32 = 100;
const MAX_NODE_PAGE: u32 = 1_000;
/// `30s`, `5m`, `2h`: one to three digits (no leading zero) and a unit, as
/// the document's pattern says. Parsed by hand so that no spelling
/// (fractions, huge numbers) can produce a zero or overflowing bucket width.
fn parse_interval(text: &str) -> Option<Duration> {
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    let well_formed =
        (1..=3).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if !well_formed {
        return None;
    }
    Some(Duration::from_secs(digits.parse::<u64>().ok()? * unit))
}

/// An hour before `to`, or `None` when that lies before the first
/// representable instant.
fn an_hour_before(to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    to.checked_sub_signed(chrono::Duration::hours(1))
}

api_module! {
    list_clusters => Access::Role(RequireRole::VIEWER),
    get_cluster => Access::Role(RequireRole::VIEWER),
    get_cluster_metrics => Access::Role(RequireRole::VIEWER),
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterMetricsView {
    avg_cpu_usage: f64,
    avg_memory_usage: f64,
    avg_latency: f64,
    error_rate: f64,
    requests_per_second: f64,
}

impl From<NodeMetrics> for ClusterMetricsView {
    fn from(m: NodeMetrics) -> Self {
        ClusterMetricsView {
            avg_cpu_usage: m.cpu_usage,
            avg_memory_usage: m.memory_usage,
            avg_latency: m.latency_ms,
            error_rate: m.error_rate,
            requests_per_second: m.requests_per_second,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NodeMetricsView {
    cpu_usage: f64,
    memory_usage: f64,
    latency: f64,
    error_rate: f64,
    requests_per_second: f64,
}

impl From<NodeMetrics> for NodeMetricsView {
    fn from(m: NodeMetrics) -> Self {
        NodeMetricsView {
            cpu_usage: m.cpu_usage,
            memory_usage: m.memory_usage,
            latency: m.latency_ms,
            error_rate: m.error_rate,
            requests_per_second: m.requests_per_second,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct NodeItem {
    node_id: Uuid,
    hostname: String,
    /// `simulated`, or `agent` for a real host running `hotswap agent`.
    #[schema(example = "simulated")]
    kind: &'static str,
    status: &'static str,
    is_healthy: bool,
    last_heartbeat: Option<DateTime<Utc>>,
    metrics: Option<NodeMetricsView>,
    modules: BTreeMap<String, String>,
    health_messages: Vec<String>,
    /// Agent nodes whose host differs from the desired state and was left so
    /// (`[agent] drift = "flag"`): module → what differs.
    drift: BTreeMap<String, String>,
}

impl From<NodeView> for NodeItem {
    fn from(n: NodeView) -> Self {
        NodeItem {
            node_id: n.node_id,
            hostname: n.hostname,
            kind: n.kind,
            status: n.status,
            is_healthy: n.is_healthy,
            last_heartbeat: n.last_heartbeat,
            metrics: n.metrics.map(NodeMetricsView::from),
            modules: n.modules,
            health_messages: n.health_messages,
            drift: n.drift,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterView {
    #[schema(value_type = EnvironmentName)]
    environment: Environment,
    total_nodes: usize,
    healthy_nodes: usize,
    unhealthy_nodes: usize,
    is_healthy: bool,
    metrics: ClusterMetricsView,
    nodes: Vec<NodeItem>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClusterSummaryView {
    #[schema(value_type = EnvironmentName)]
    environment: Environment,
    total_nodes: usize,
    healthy_nodes: usize,
    is_healthy: bool,
}

impl From<ClusterSummary> for ClusterSummaryView {
    fn from(c: ClusterSummary) -> Self {
        ClusterSummaryView {
            environment: c.environment,
            total_nodes: c.total_nodes,
            healthy_nodes: c.healthy_nodes,
            is_healthy: c.is_healthy,
        }
    }
}

fn parse_environment(raw: &str) -> Result<Environment, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("Environment '{raw}' not found")))
}

/// Every environment's cluster, in promotion order: the tenant's simulated
/// nodes (`[simulation.nodes]`, at most its `nodesPerEnvironment` quota) and
/// the hosts its agents enrolled.
#[utoipa::path(
    get,
    path = "/api/v1/clusters",
    tag = "clusters",
    responses(
        Protected,
        (status = 200, description = "The clusters", body = Vec<ClusterSummaryView>),
    )
)]
pub async fn list_clusters(state: web::Data<AppState>, tenant: Tenant) -> HttpResponse {
    let clusters = state.orchestrator.clusters(tenant.0).await;
    HttpResponse::Ok().json(clusters.into_iter().map(ClusterSummaryView::from).collect::<Vec<_>>())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    page: Option<u32>,
    /// Nodes per page: at most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// Only healthy (true) or only unhealthy (false) nodes.
    healthy: Option<bool>,
    /// Only nodes that run this module (at `version` when given).
    module: Option<String>,
    /// Only nodes running this version (of `module`, or of any module).
    version: Option<String>,
}

/// One environment's cluster: the summary of all its nodes, and one page of
/// the nodes (with their module versions) that pass the filters.
#[utoipa::path(
    get,
    path = "/api/v1/clusters/{environment}",
    tag = "clusters",
    params(
        ("environment" = String, Path, description = "Development, QA, Staging or Production (any case)"),
        NodeListQuery,
    ),
    responses(
        Protected,
        (status = 200, description = "The cluster with a page of its nodes", body = ClusterView, headers(
            ("X-Total-Count" = u64, description = "Nodes that pass the filters"),
            ("X-Page" = u32, description = "The page"),
            ("X-Page-Size" = u32, description = "The page size"),
        )),
        (status = 400, description = "Invalid paging or filters", body = ErrorBody),
        (status = 404, description = "No such environment", body = ErrorBody),
    )
)]
pub async fn get_cluster(
    state: web::Data<AppState>,
    tenant: Tenant,
    env: web::Path<String>,
    query: Query<NodeListQuery>,
) -> Result<HttpResponse, ApiError> {
    let env = parse_environment(&env)?;
    let q = query.into_inner();
    let asked = super::count_params::page_within(q.page, q.page_size, DEFAULT_NODE_PAGE, MAX_NODE_PAGE)?;
    let filter = NodeFilter { healthy: q.healthy, module: q.module, version: q.version };
    let c = state.orchestrator.cluster_page(tenant.0, env, &filter, asked.page as usize, asked.size as usize).await;
    Ok(asked.answer(c.matching).json(ClusterView {
        environment: env,
        total_nodes: c.summary.total_nodes,
        healthy_nodes: c.summary.healthy_nodes,
        unhealthy_nodes: c.summary.total_nodes - c.summary.healthy_nodes,
        is_healthy: c.summary.is_healthy,
        metrics: c.metrics.into(),
        nodes: c.nodes.into_iter().map(NodeItem::from).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Start of the range (RFC 3339); default an hour before `to`.
    from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339); default now.
    to: Option<DateTime<Utc>>,
    /// Bucket width: 1 to 999 seconds, minutes or hours, such as 30s, 5m or
    /// 2h; default 5m.
    #[param(pattern = "^[1-9][0-9]{0,2}[smh]$")]
    interval: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MetricsPointView {
    timestamp: DateTime<Utc>,
    cpu_usage: f64,
    memory_usage: f64,
    latency: f64,
    error_rate: f64,
    requests_per_second: f64,
    samples: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MetricsSeries {
    #[schema(value_type = EnvironmentName)]
    environment: Environment,
    interval: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    data_points: Vec<MetricsPointView>,
}

/// Recorded cluster metrics in `[from, to]`, averaged per interval.
#[utoipa::path(
    get,
    path = "/api/v1/clusters/{environment}/metrics",
    tag = "clusters",
    params(
        ("environment" = String, Path, description = "Development, QA, Staging or Production (any case)"),
        MetricsQuery,
    ),
    responses(
        Protected,
        (status = 200, description = "The series", body = MetricsSeries),
        (status = 400, description = "Unknown environment, or an invalid range or interval", body = ErrorBody),
    )
)]
pub async fn get_cluster_metrics(
    state: web::Data<AppState>,
    tenant: Tenant,
    env: web::Path<String>,
    query: Query<MetricsQuery>,
) -> Result<HttpResponse, ApiError> {
    // The original answered 400 here, unlike the cluster detail's 404; kept.
    let env: Environment =
        env.parse().map_err(|e: hotswap_actors::domain::UnknownEnvironment| ApiError::BadRequest(e.to_string()))?;
    let q = query.into_inner();
    let to = q.to.unwrap_or_else(Utc::now);
    let mut errors = Vec::new();
    let from = match q.from.or_else(|| an_hour_before(to)) {
        Some(from) => from,
        None => {
            errors.push("to lies too far in the past to default from to an hour before it".to_string());
            to
        }
    };
    let interval_text = q.interval.unwrap_or_else(|| "5m".to_string());
    let interval = parse_interval(&interval_text).unwrap_or_else(|| {
        errors.push(format!(
            "interval '{interval_text}' must be 1 to 999 seconds, minutes or hours, such as 30s, 5m or 2h"
        ));
        Duration::from_secs(300)
    });
    // Whole seconds fit in i64 for any bucket parse_interval allows.
    let width_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1);
    if from >= to {
        errors.push("from must be earlier than to".to_string());
    } else if (to - from).num_milliseconds() / width_ms > MAX_POINTS {
        errors.push(format!("the range holds more than {MAX_POINTS} intervals; widen the interval"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let points = state.orchestrator.cluster_metrics(tenant.0, env, from, to, interval).await?;
    Ok(HttpResponse::Ok().json(MetricsSeries {
        environment: env,
        interval: interval_text,
        from,
        to,
        data_points: points
            .into_iter()
            .map(|p| MetricsPointView {
                timestamp: p.timestamp,
                cpu_usage: p.metrics.cpu_usage,
                memory_usage: p.metrics.memory_usage,
                latency: p.metrics.latency_ms,
                error_rate: p.metrics.error_rate,
                requests_per_second: p.metrics.requests_per_second,
                samples: p.samples,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded_whole_units() {
        assert_eq!(parse_interval("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_interval("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("999h"), Some(Duration::from_secs(999 * 3600)));
        for bad in ["", "s", "0s", "05m", "1000h", "1.5m", "18446744073709551.616s", "5d", "-5m", "5 m", "٣s"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_start_does_not_underflow() {
        assert!(an_hour_before(DateTime::<Utc>::MIN_UTC).is_none());
        let now = Utc::now();
        assert_eq!(an_hour_before(now), Some(now - chrono::Duration::hours(1)));
    }

    proptest::proptest! {
        #![proptest_config(crate::web::fuzz::config(20_000))]
        #[test]
        fn random_intervals_never_panic(input in crate::web::fuzz::untrusted_text()) {
            if let Some(d) = parse_interval(&input) {
                proptest::prop_assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(999 * 3600), "{:?}", input);
            }
        }
    }
}
