//! Canary readings from Prometheus: each query, with `$node`, `$module` and
//! `$version` filled in for one node, asked of the HTTP API's instant-query
//! endpoint (`GET /api/v1/query`).

use async_trait::async_trait;
use futures::{stream, StreamExt, TryStreamExt};
use hotswap_actors::analysis::{
    AnalysedNode, AnalysisError, AnalysisScope, Measurement, MetricsProvider, Patience, Readings,
};
use hotswap_actors::domain::MetricQuery;
use hotswap_actors::store::SharedStore;
use serde::Deserialize;

use super::settings::AnalysisSettings;
use crate::error_chain::error_chain;

/// Queries in flight at once for one measurement: enough to measure a few
/// dozen nodes within a bake, few enough not to flood Prometheus.
const CONCURRENT_QUERIES: usize = 8;

pub struct PrometheusProvider {
    client: reqwest::Client,
    query_url: reqwest::Url,
    settings: AnalysisSettings,
    /// The registry's versions, whose descriptors may bring their own queries.
    store: SharedStore,
}

impl PrometheusProvider {
    pub fn new(settings: &AnalysisSettings, store: SharedStore) -> Result<PrometheusProvider, String> {
        crate::notify::install_crypto_provider();
        let base = reqwest::Url::parse(&settings.url).map_err(|e| format!("analysis.url: {e}"))?;
        let query_url = base.join("api/v1/query").map_err(|e| format!("analysis.url: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .user_agent(concat!("hotswap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Prometheus client: {e}"))?;
        Ok(PrometheusProvider { client, query_url, settings: settings.clone(), store })
    }

    /// The descriptor's queries when the registry has the version and it
    /// brings some, else the configured ones.
    async fn queries(&self, scope: &AnalysisScope) -> Result<Vec<MetricQuery>, AnalysisError> {
        let stored = self
            .store
            .get_module_version(scope.tenant, &scope.module, &scope.version)
            .await
            .map_err(|e| AnalysisError::Unavailable(format!("the module's descriptor cannot be read: {e}")))?;
        let own = stored.and_then(|v| v.descriptor.analysis).map(|a| a.queries).unwrap_or_default();
        let queries = if own.is_empty() { self.settings.queries.clone() } else { own };
        if queries.is_empty() {
            return Err(AnalysisError::Refused(
                "no query to ask: set [analysis] queries or the module descriptor's analysis.queries".into(),
            ));
        }
        Ok(queries)
    }

    /// One query's value for one node: the sum of the series it answers.
    async fn read(
        &self,
        metric: &MetricQuery,
        scope: &AnalysisScope,
        node: &AnalysedNode,
    ) -> Result<f64, AnalysisError> {
        let promql = fill_placeholders(&metric.query, &node.hostname, &scope.module, &scope.version);
        let host = &node.hostname;
        let mut url = self.query_url.clone();
        url.query_pairs_mut().append_pair("query", &promql);
        let reply = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| AnalysisError::Unavailable(format!("cannot reach it: {}", error_chain(&e))))?;
        let status = reply.status();
        let body: QueryReply = match reply.json().await {
            Ok(body) => body,
            Err(e) if status.is_success() => {
                return Err(AnalysisError::Unavailable(format!("its answer to '{promql}' is not JSON: {e}")))
            }
            Err(_) => return Err(AnalysisError::Unavailable(format!("it answered {status} to '{promql}'"))),
        };
        if body.status != "success" {
            let why = format!("'{promql}' failed ({}): {}", body.error_type, body.error);
            // A query Prometheus cannot parse or run stays wrong however often it is asked.
            return match body.error_type.as_str() {
                "bad_data" | "execution" => Err(AnalysisError::Refused(why)),
                _ => Err(AnalysisError::Unavailable(why)),
            };
        }
        let value = body.data.value().ok_or_else(|| {
            AnalysisError::Unavailable(format!("'{promql}' ({}) has no sample for {host} yet", metric.name))
        })?;
        if value.is_nan() {
            return Err(AnalysisError::Unavailable(format!("'{promql}' ({}) answered NaN for {host}", metric.name)));
        }
        Ok(value)
    }
}

#[async_trait]
impl MetricsProvider for PrometheusProvider {
    fn describe(&self) -> String {
        format!("Prometheus at {}", self.settings.url.shown())
    }

    fn patience(&self) -> Patience {
        Patience { timeout: self.settings.timeout, retry_interval: self.settings.retry_interval }
    }

    async fn measure(&self, scope: AnalysisScope) -> Result<Measurement, AnalysisError> {
        let metrics = self.queries(&scope).await?;
        let mut asks = Vec::with_capacity(scope.nodes.len() * metrics.len());
        for node in &scope.nodes {
            for metric in &metrics {
                let scope = &scope;
                asks.push(async move {
                    let value = self.read(metric, scope, node).await?;
                    Ok::<_, AnalysisError>((node.node_id, metric.name.clone(), value))
                });
            }
        }
        let values: Vec<(uuid::Uuid, String, f64)> =
            stream::iter(asks).buffer_unordered(CONCURRENT_QUERIES).try_collect().await?;
        let mut readings: Vec<(uuid::Uuid, Readings)> =
            scope.nodes.iter().map(|n| (n.node_id, Readings::new())).collect();
        for (id, name, value) in values {
            if let Some((_, r)) = readings.iter_mut().find(|(node, _)| *node == id) {
                r.insert(name, value);
            }
        }
        Ok(Measurement { metrics, readings })
    }
}

/// `$node`, `$module` and `$version` replaced, each escaped for a PromQL
/// double-quoted string, where such values go (`{instance="$node"}`).
pub fn fill_placeholders(query: &str, node: &str, module: &str, version: &str) -> String {
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    query.replace("$node", &escape(node)).replace("$module", &escape(module)).replace("$version", &escape(version))
}

/// The instant-query answer: `{status, data: {resultType, result}, errorType?, error?}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryReply {
    status: String,
    #[serde(default)]
    data: QueryData,
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    #[serde(default)]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Series {
    /// `[unix time, "value"]`: Prometheus sends values as strings.
    value: (f64, String),
}

impl QueryData {
    /// A scalar, or the sum of a vector's series; `None` for an empty vector
    /// or an answer of another shape.
    fn value(&self) -> Option<f64> {
        match self.result_type.as_str() {
            "scalar" => {
                let (_, v): (f64, String) = serde_json::from_value(self.result.clone()).ok()?;
                v.parse().ok()
            }
            "vector" => {
                let series: Vec<Series> = serde_json::from_value(self.result.clone()).ok()?;
                let values: Option<Vec<f64>> = series.iter().map(|s| s.value.1.parse::<f64>().ok()).collect();
                let values = values?;
                (!values.is_empty()).then(|| values.iter().sum())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(name: &str) -> MetricQuery {
        MetricQuery {
            name: name.into(),
            query: "up".into(),
            max_rise_percent: Some(50.0),
            floor: 1.0,
            max: None,
            unit: String::new(),
        }
    }

    fn scope(version: &str) -> AnalysisScope {
        AnalysisScope {
            tenant: hotswap_actors::domain::DEFAULT_TENANT,
            module: "kmod".into(),
            version: version.into(),
            environment: hotswap_actors::domain::Environment::Production,
            nodes: Vec::new(),
        }
    }

    #[actix_web::test]
    async fn a_descriptors_queries_replace_the_configured_ones() {
        use hotswap_actors::domain::{
            AuditActor, AuditCategory, ModuleAnalysis, ModuleDescriptor, ModuleVersion, NewAuditEntry,
        };
        let store: SharedStore = std::sync::Arc::new(hotswap_actors::store::MemoryStore::new());
        let descriptor: ModuleDescriptor = serde_json::from_value(json!({"name": "kmod", "version": "2.0.0"})).unwrap();
        let version = ModuleVersion {
            tenant_id: hotswap_actors::domain::DEFAULT_TENANT,
            descriptor: ModuleDescriptor {
                analysis: Some(ModuleAnalysis { queries: vec![query("own")] }),
                ..descriptor
            },
            sha256: "0".repeat(64),
            size_bytes: 1,
            storage_uri: "fs:x".into(),
            signature: None,
            signing_key_id: None,
            uploaded_by: None,
            uploaded_at: chrono::Utc::now(),
        };
        let audit = NewAuditEntry::new(
            version.tenant_id,
            AuditActor::system(),
            AuditCategory::ModuleRegistry,
            "ModuleUploaded",
        );
        store.add_module_version(&version, &audit).await.unwrap();
        let mut settings = AnalysisSettings { url: "http://127.0.0.1:9".into(), ..Default::default() };
        let provider = PrometheusProvider::new(&settings, store.clone()).unwrap();
        assert_eq!(provider.queries(&scope("2.0.0")).await.unwrap(), vec![query("own")]);
        // A version without queries of its own, and none configured: refused, not passed.
        assert!(matches!(provider.queries(&scope("1.0.0")).await, Err(AnalysisError::Refused(_))));
        settings.queries = vec![query("configured")];
        let provider = PrometheusProvider::new(&settings, store).unwrap();
        assert_eq!(provider.queries(&scope("1.0.0")).await.unwrap(), vec![query("configured")]);
        assert_eq!(provider.queries(&scope("2.0.0")).await.unwrap(), vec![query("own")]);
    }

    #[test]
    fn placeholders_are_filled_and_escaped() {
        let q = r#"sum(rate(http_errors_total{instance="$node",module="$module",version="$version"}[1m]))"#;
        assert_eq!(
            fill_placeholders(q, "prod-01", "kmod", "2.0.0"),
            r#"sum(rate(http_errors_total{instance="prod-01",module="kmod",version="2.0.0"}[1m]))"#
        );
        assert_eq!(fill_placeholders(r#"x{a="$node"}"#, r#"a"b\c"#, "m", "v"), r#"x{a="a\"b\\c"}"#);
    }

    fn data(v: serde_json::Value) -> QueryData {
        let reply: QueryReply = serde_json::from_value(v).unwrap();
        reply.data
    }

    #[test]
    fn vectors_sum_their_series_and_empty_answers_have_no_value() {
        let two = data(json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"a": "1"}, "value": [1700000000.5, "1.5"]},
            {"metric": {"a": "2"}, "value": [1700000000.5, "2"]}
        ]}}));
        assert_eq!(two.value(), Some(3.5));
        let empty = data(json!({"status": "success", "data": {"resultType": "vector", "result": []}}));
        assert_eq!(empty.value(), None);
        let scalar = data(json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "4"]}}));
        assert_eq!(scalar.value(), Some(4.0));
        let matrix = data(json!({"status": "success", "data": {"resultType": "matrix", "result": []}}));
        assert_eq!(matrix.value(), None);
    }
}
