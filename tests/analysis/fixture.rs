//! What the Prometheus tests stand on: a small metrics endpoint whose
//! values follow the version each simulated node runs, a real Prometheus
//! scraping it every second, and a HotSwap server judging canaries by it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use hotswap::config::{AnalysisProvider, Settings};
use hotswap::startup::Application;
use hotswap_actors::domain::{Environment, MetricQuery, DEFAULT_TENANT};
use hotswap_actors::store::SharedStore;
use hotswap_actors::Orchestrator;

use crate::db::poll::eventually_ok;

pub const MODULE: &str = "kmod-analysed";
/// Nodes running this version answer an error ratio far above the others'.
pub const BAD_VERSION: &str = "6.6.6";
pub const HEALTHY_RATIO: f64 = 0.2;
pub const BAD_RATIO: f64 = 3.0;
pub const NODES: usize = 4;

/// The `prometheus` executable, or `None` after saying why the test is skipped.
/// With HOTSWAP_REQUIRE_PROMETHEUS=1 (CI) a missing one fails the test instead.
pub fn prometheus_binary(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("prometheus")).find(|p| p.is_file()));
    if found.is_none() {
        let required = std::env::var("HOTSWAP_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: HOTSWAP_REQUIRE_PROMETHEUS=1 but no prometheus executable is on PATH");
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{test}: skipped: no prometheus executable (apt-get install prometheus)");
    }
    found
}

/// A port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Prometheus process, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second.
    pub fn start(binary: &PathBuf, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// Waits until Prometheus has scraped a value for every node.
    pub async fn wait_for_series(&self, series: usize) {
        let client = awc::Client::default();
        let url = format!("{}/api/v1/query?query=count(app_error_ratio)", self.url);
        eventually_ok(Duration::from_secs(30), "Prometheus scrapes the metrics endpoint", async || {
            let mut reply = client.get(&url).send().await.map_err(|e| e.to_string())?;
            let body: serde_json::Value = reply.json().await.map_err(|e| e.to_string())?;
            let count = body["data"]["result"][0]["value"][1].as_str().unwrap_or("0").to_string();
            (count == series.to_string()).then_some(()).ok_or(format!("{body}"))
        })
        .await;
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error ratio each Development node "serves": high while it runs
/// `BAD_VERSION`, low otherwise, read from the store at every scrape.
async fn metrics(store: web::Data<SharedStore>) -> HttpResponse {
    let nodes = store.nodes_in(DEFAULT_TENANT, Environment::Development).await.unwrap_or_default();
    let mut body = String::from("# TYPE app_error_ratio gauge\n");
    for node in nodes {
        let running = node.modules.get(MODULE).and_then(|s| s.active.as_ref()).map(|v| v.version.clone());
        let ratio = if running.as_deref() == Some(BAD_VERSION) { BAD_RATIO } else { HEALTHY_RATIO };
        body.push_str(&format!("app_error_ratio{{node=\"{}\"}} {ratio}\n", node.hostname));
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

/// Serves `/metrics` on `listener` from `store`.
pub fn serve_metrics(listener: TcpListener, store: SharedStore) {
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(store.clone())).route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
}

pub fn error_ratio_query() -> MetricQuery {
    MetricQuery {
        name: "error ratio".into(),
        query: r#"app_error_ratio{node="$node"}"#.into(),
        max_rise_percent: Some(50.0),
        floor: 0.1,
        max: Some(10.0),
        unit: "%".into(),
    }
}

/// A server of the test profile whose Development nodes run canaries judged
/// by Prometheus at `prometheus_url`, waiting `bake` after each step.
pub async fn spawn_server(prometheus_url: &str, bake: &str) -> Orchestrator {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let nodes = NODES.to_string();
    let vars = [
        ("HOTSWAP__SERVER__BIND", "127.0.0.1:0"),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", nodes.as_str()),
        ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", bake),
        ("HOTSWAP__ANALYSIS__PROVIDER", "prometheus"),
        ("HOTSWAP__ANALYSIS__URL", prometheus_url),
        ("HOTSWAP__ANALYSIS__TIMEOUT", "3s"),
        ("HOTSWAP__ANALYSIS__RETRY_INTERVAL", "200ms"),
        ("HOTSWAP__ANALYSIS__REQUEST_TIMEOUT", "1s"),
    ];
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let mut settings = Settings::load_from(&dir, "test", vars).expect("test settings load");
    assert_eq!(settings.analysis.provider, AnalysisProvider::Prometheus);
    // Lists of tables have no environment-variable form: set in code.
    settings.analysis.queries = vec![error_ratio_query()];
    let app = Application::build(settings).await.expect("application starts");
    let orchestrator = app.orchestrator.clone();
    actix_web::rt::spawn(app.run());
    orchestrator
}
