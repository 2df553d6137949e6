//! `hotswap users`: an Admin creates a user with a password from standard
//! input, changes its roles, disables and enables it and sets its password;
//! each change applies to the user's next request; the list comes a page at
//! a time. A Deployer may not.

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};

#[actix_web::test]
async fn an_admin_manages_a_user_who_signs_in_with_what_was_set() {
    let server = Server::start().await;
    let admin = Operator::logged_in(&server, ADMIN).await;

    let made = admin
        .run_with_input(
            &["users", "create", "jdoe", "--email", "jdoe@example.com", "--role", "Viewer", "--password-stdin"],
            "first-password-1\n",
        )
        .await;
    assert_eq!(made.code, 0, "{made:?}");
    assert!(made.stdout.starts_with("created jdoe (Viewer): "), "{made:?}");
    let listed = admin.run(&["users"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with("jdoe") && l.contains("active")), "{listed:?}");
    // Without a terminal, a password is never asked for.
    let no_tty = admin.run(&["users", "create", "kdoe", "--email", "k@example.com", "--role", "Viewer"]).await;
    assert_eq!(no_tty.code, 2, "{no_tty:?}");
    assert!(no_tty.stderr.contains("--password-stdin"), "{no_tty:?}");

    let jdoe = Operator::logged_in(&server, ("jdoe", "first-password-1")).await;
    let denied = jdoe.run(&["deploy", "netfilter-ext", "1.0.0", "--to", "Development"]).await;
    assert_eq!(denied.code, 2, "a Viewer starts no run: {denied:?}");

    let roles = admin.run(&["users", "roles", "jdoe", "Deployer"]).await;
    assert_eq!(roles.stdout.trim(), "jdoe now has the roles Deployer", "{roles:?}");
    let deployed = jdoe.run(&["deploy", "netfilter-ext", "1.0.0", "--to", "Development"]).await;
    assert_eq!(deployed.code, 0, "the same token carries the new role: {deployed:?}");

    assert_eq!(admin.run(&["users", "disable", "jdoe"]).await.code, 0);
    let refused = jdoe.run(&["runs"]).await;
    assert_eq!(refused.code, 2, "a disabled user's token stops working: {refused:?}");
    assert!(admin.run(&["users"]).await.stdout.lines().any(|l| l.starts_with("jdoe") && l.contains("disabled")));
    assert_eq!(admin.run(&["users", "enable", "jdoe"]).await.code, 0);

    let set = admin.run_with_input(&["users", "password", "jdoe", "--password-stdin"], "second-password-2\n").await;
    assert_eq!(set.stdout.trim(), "set the password of jdoe", "{set:?}");
    let old = Operator::new(&server).login(("jdoe", "first-password-1")).await;
    assert_ne!(old.code, 0, "the old password no longer signs in: {old:?}");
    Operator::logged_in(&server, ("jdoe", "second-password-2")).await;

    // The second page of two of the four users, and a user named by its id.
    let page = admin.run(&["users", "--page", "2", "--page-size", "2"]).await;
    let rows: Vec<&str> = page.stdout.lines().filter(|l| !l.starts_with("USERNAME")).collect();
    assert!(rows[0].starts_with("jdoe") && rows[1].starts_with("viewer"), "{page:?}");
    assert!(page.stdout.contains("users 3–4 of 4"), "{page:?}");
    let id = rows[0].split_whitespace().last().unwrap();
    assert_eq!(
        admin.run(&["users", "disable", id]).await.stdout.trim(),
        "disabled jdoe: signing in is refused and its tokens stopped working"
    );
    assert_eq!(admin.run(&["users", "enable", "JDOE"]).await.code, 0, "a username in any case names its user");

    let unknown = admin.run(&["users", "disable", "nobody"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no user is named 'nobody'"), "{unknown:?}");
    let deployer = Operator::logged_in(&server, DEPLOYER).await;
    assert_eq!(deployer.run(&["users"]).await.code, 2, "users are an Admin's");
}

/// Walkthrough w2 #11: a user changes the password an Admin set for it; the
/// saved login keeps working with the new token, other sessions end.
#[actix_web::test]
async fn a_user_changes_its_own_password_and_stays_signed_in() {
    let server = Server::start().await;
    let admin = Operator::logged_in(&server, ADMIN).await;
    let input = "set-by-the-admin-1\n";
    let made = admin
        .run_with_input(
            &["users", "create", "pdoe", "--email", "p@example.com", "--role", "Viewer", "--password-stdin"],
            input,
        )
        .await;
    assert_eq!(made.code, 0, "{made:?}");
    let pdoe = Operator::logged_in(&server, ("pdoe", "set-by-the-admin-1")).await;
    let elsewhere = Operator::logged_in(&server, ("pdoe", "set-by-the-admin-1")).await;

    let wrong = pdoe.run_with_input(&["password", "--password-stdin"], "a-guess\nmy-own-password-2\n").await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(wrong.stderr.contains("currentPassword"), "{wrong:?}");
    let no_tty = pdoe.run(&["password"]).await;
    assert_eq!(no_tty.code, 2, "{no_tty:?}");
    assert!(no_tty.stderr.contains("--password-stdin"), "{no_tty:?}");

    let changed =
        pdoe.run_with_input(&["password", "--password-stdin"], "set-by-the-admin-1\nmy-own-password-2\n").await;
    assert_eq!(changed.code, 0, "{changed:?}");
    assert!(changed.stdout.starts_with("changed the password of pdoe"), "{changed:?}");
    assert_eq!(pdoe.run(&["runs"]).await.code, 0, "the saved login holds the new token");
    assert_eq!(elsewhere.run(&["runs"]).await.code, 2, "another session's token has ended");
    let old = Operator::new(&server).login(("pdoe", "set-by-the-admin-1")).await;
    assert_ne!(old.code, 0, "the Admin's password no longer signs in: {old:?}");
    Operator::logged_in(&server, ("pdoe", "my-own-password-2")).await;
}
