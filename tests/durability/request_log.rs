//! What a client sends cannot write lines of its own into the server's log:
//! an error message repeating a path with a line break is logged escaped.

use crate::process::{free_port, Server};

#[actix_web::test]
async fn a_line_break_in_a_request_does_not_start_a_line_of_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = [("HOTSWAP__LOGGING__FORMAT", "pretty".to_string())];
    let server = Server::start(free_port(), &vars, dir.path().join("server.log")).await;
    let forged = "/api/v1/clusters/x%0A1999-01-01T00:00:00Z%20INFO%20hotswap:%20admin%20granted%20root";
    let (status, body) = server.get(forged).await.expect("the server answers");
    assert_eq!(status.as_u16(), 404, "{body}");
    let log = server.log_text();
    assert!(log.contains("exception.message=Environment 'x\\n1999-01-01T00:00:00Z"), "the refusal is logged:\n{log}");
    assert!(!log.lines().any(|line| line.starts_with("1999-01-01")), "a forged line in the log:\n{log}");
}
