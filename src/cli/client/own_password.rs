//! `hotswap password`: the signed-in user changes its own password, giving
//! the current one (an Admin sets other users' with `hotswap users password`).
//! The server ends every token the user holds and answers a new one, which
//! replaces the saved login's when that is the token used.

use std::io::IsTerminal;

use serde_json::json;

use super::api::Api;
use super::listings::done;
use super::output::{cell, Out};
use super::{read_line, session, Exit, Failure};

pub(super) async fn change(api: &Api, out: Out, from_stdin: bool) -> Result<Exit, Failure> {
    let token = api.require_token()?.to_string();
    let (current, new) = passwords(from_stdin)?;
    let body = json!({ "currentPassword": current, "newPassword": new });
    let reply = api.post("/api/v1/authentication/password", &body).await?.body;
    let fresh = reply["token"].as_str().ok_or_else(|| Failure::general("the server answered no token"))?;
    let username = cell(&reply["user"]["username"]);
    let saved = session::load().filter(|c| session::normalise(&c.server) == api.server && c.token == token);
    let line = match saved {
        Some(mut credentials) => {
            credentials.token = fresh.to_string();
            credentials.expires_at = reply["expiresAt"].as_str().map(str::to_string);
            let path = session::save(&credentials)?;
            format!(
                "changed the password of {username}; its other sessions have ended, and the saved login ({}) holds the new token",
                path.display()
            )
        }
        None => format!(
            "changed the password of {username}; every token it held has ended, the one used here too: log in again"
        ),
    };
    done(out, json!({ "passwordChanged": username, "expiresAt": reply["expiresAt"] }), &line)
}

/// The current password and the new one: the first two lines of standard
/// input, or asked on the terminal without echo (the new one twice).
fn passwords(from_stdin: bool) -> Result<(String, String), Failure> {
    if from_stdin {
        return Ok((read_line(None)?, read_line(None)?));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "standard input is not a terminal: pipe the current and the new password, one a line, with --password-stdin",
        ));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| Failure::general(format!("cannot read the password: {e}")))
    };
    let current = ask("Current password: ")?;
    let new = ask("New password: ")?;
    if ask("The new one again: ")? != new {
        return Err(Failure::usage("the two new passwords differ; nothing was changed"));
    }
    Ok((current, new))
}
