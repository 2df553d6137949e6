//! Options that take one of a few words are checked before anything is sent,
//! in any case, and a word outside them is refused listing those accepted.

/// The client against a server that is not there, with a token, so that
/// only the command line's own checks can answer.
fn offline(args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(args)
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOTSWAP_SERVER", "http://127.0.0.1:9")
        .env("HOTSWAP_TOKEN", "not-sent")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn an_unknown_word_is_refused_listing_the_accepted_ones() {
    let cases: [(&[&str], &str); 7] = [
        (&["topics", "create", "t2", "--type", "Foo"], "PubSub, Queue"),
        (&["topics", "create", "t2", "--guarantee", "Bogus"], "AtMostOnce, AtLeastOnce, ExactlyOnce"),
        (&["agents", "token", "--to", "Dev"], "Development, QA, Staging, Production"),
        (&["nodes", "Prod"], "Development, QA, Staging, Production"),
        (&["deploy", "kmod", "1.0.0", "--to", "Prod"], "Development, QA, Staging, Production"),
        (&["runs", "--status", "Bogus"], "Running, PendingApproval"),
        (&["audit", "--category", "Bogus"], "Deployment, Approval"),
    ];
    for (args, accepted) in cases {
        let (code, stderr) = offline(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(accepted), "{args:?} lists {accepted}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{args:?} sent nothing: {stderr}");
    }
    // Any case passes the check and goes on to the server (here: not there).
    let (code, stderr) = offline(&["runs", "--status", "failed", "--env", "qa"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot reach") && stderr.contains("status=Failed"), "{stderr}");
}

#[test]
fn an_approval_asked_of_a_run_without_a_gate_is_refused() {
    for target in ["Development", "QA"] {
        let (code, stderr) = offline(&["deploy", "kmod", "1.0.0", "--to", target, "--require-approval"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("--require-approval applies to runs to Staging and Production"), "{stderr}");
        let (code, _) = offline(&["plan", "kmod", "1.0.0", "--to", target, "--require-approval"]);
        assert_eq!(code, 2);
    }
    // Staging has the gate: the request goes on (to a server that is not there).
    let (code, stderr) =
        offline(&["deploy", "kmod", "1.0.0", "--to", "Staging", "--require-approval", "--requester", "a@b.c"]);
    assert_eq!(code, 1, "{stderr}");
}
