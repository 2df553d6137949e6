//! `hotswap users`: the tenant's users, managed by its Admins over the API
//! (`/api/v1/users`). A user is named by its user name or its id. Passwords
//! are asked without echo, twice, or read from standard input; they are
//! never arguments, which other users of the host could read.

use std::io::IsTerminal;

use awc::http::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::api::Api;
use super::commands::UsersCommand;
use super::listings::{done, page_footer, show};
use super::output::{cell, when, Out};
use super::{read_line, segment, Exit, Failure};

pub(super) async fn users(
    api: &Api,
    out: Out,
    command: Option<UsersCommand>,
    page: u32,
    size: u32,
) -> Result<Exit, Failure> {
    let Some(command) = command else { return list(api, out, page, size).await };
    match command {
        UsersCommand::Create { username, email, roles, full_name, password_stdin } => {
            let password = new_password(&username, password_stdin)?;
            let mut body = json!({ "username": username, "email": email, "roles": roles, "password": password });
            if let Some(name) = full_name {
                body["fullName"] = name.into();
            }
            let made = api.post("/api/v1/users", &body).await?.body;
            let line = format!("created {} ({}): {}", cell(&made["username"]), roles_of(&made), cell(&made["id"]));
            done(out, made, &line)
        }
        UsersCommand::Disable { user } => {
            let (id, name) = user_id(api, &user).await?;
            let changed = api.post(&format!("/api/v1/users/{}/disable", segment(&id)), &json!({})).await?.body;
            done(out, changed, &format!("disabled {name}: signing in is refused and its tokens stopped working"))
        }
        UsersCommand::Enable { user } => {
            let (id, name) = user_id(api, &user).await?;
            let changed = api.post(&format!("/api/v1/users/{}/enable", segment(&id)), &json!({})).await?.body;
            done(out, changed, &format!("enabled {name}"))
        }
        UsersCommand::Roles { user, roles } => {
            let (id, name) = user_id(api, &user).await?;
            api.require_token()?;
            let path = format!("/api/v1/users/{}/roles", segment(&id));
            let changed = api.call(Method::PUT, &path, Some(&json!({ "roles": roles }))).await?.body;
            let line = format!("{name} now has the roles {}", roles_of(&changed));
            done(out, changed, &line)
        }
        UsersCommand::Password { user, password_stdin } => {
            let (id, name) = user_id(api, &user).await?;
            let password = new_password(&name, password_stdin)?;
            let path = format!("/api/v1/users/{}/password", segment(&id));
            api.post(&path, &json!({ "password": password })).await?;
            done(out, json!({ "passwordSet": name }), &format!("set the password of {name}"))
        }
    }
}

async fn list(api: &Api, out: Out, page: u32, size: u32) -> Result<Exit, Failure> {
    let answer = api.call(Method::GET, &format!("/api/v1/users?page={}&pageSize={size}", page.max(1)), None).await?;
    let users = answer.body;
    let headers = ["USERNAME", "EMAIL", "ROLES", "STATE", "LAST LOGIN", "ID"];
    let exit = show(out, &users, &users, &headers, None, |u| {
        vec![
            cell(&u["username"]),
            cell(&u["email"]),
            roles_of(u),
            if u["isActive"] == Value::Bool(true) { "active" } else { "disabled" }.to_string(),
            when(&u["lastLoginAt"]),
            cell(&u["id"]),
        ]
    });
    page_footer(out, "users", page, size, users.as_array().map_or(0, Vec::len), answer.total);
    Ok(exit)
}

fn roles_of(user: &Value) -> String {
    let roles: Vec<String> = user["roles"].as_array().into_iter().flatten().map(cell).collect();
    roles.join(", ")
}

/// The id and user name of the user `which` names (its name or its id):
/// asked by name, then, when no user has that name and it is an id, by id.
async fn user_id(api: &Api, which: &str) -> Result<(String, String), Failure> {
    let named = api.get(&format!("/api/v1/users?username={}", segment(which))).await?;
    // Matched here too: a server older than the `username` filter answers every user.
    let same_name = |u: &&Value| u["username"].as_str().is_some_and(|name| name.eq_ignore_ascii_case(which));
    let found = match named.as_array().and_then(|users| users.iter().find(same_name)) {
        Some(user) => Some(user.clone()),
        // The server's 404 says no user has that id.
        None if Uuid::parse_str(which).is_ok() => Some(api.get(&format!("/api/v1/users/{}", segment(which))).await?),
        None => None,
    };
    let found = found.ok_or_else(|| Failure::usage(format!("no user is named '{which}': see `hotswap users`")))?;
    Ok((cell(&found["id"]), cell(&found["username"])))
}

/// The new password of `username`: the first line of standard input, or
/// asked twice on the terminal (the two must match).
fn new_password(username: &str, from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        return read_line(None);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage("standard input is not a terminal: pipe the password with --password-stdin"));
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt).map_err(|e| Failure::general(format!("cannot read the password: {e}")))
    };
    let first = ask(format!("New password for {username}: "))?;
    let again = ask("The same again: ".to_string())?;
    if first != again {
        return Err(Failure::usage("the two passwords differ; nothing was changed"));
    }
    Ok(first)
}
