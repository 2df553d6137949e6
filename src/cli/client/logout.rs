//! `hotswap logout`: revokes the saved login's token on the server that issued
//! it, and deletes the file only once the token no longer works, so that a
//! logout that could not reach the server can be tried again.

use awc::http::Method;

use super::api::Api;
use super::output::{say, when};
use super::session::{self, Credentials};
use super::{Exit, Failure};

pub(super) async fn logout(api: &Api) -> Result<Exit, Failure> {
    let saved = session::load();
    let saved_here = saved.as_ref().filter(|c| session::normalise(&c.server) == api.server);
    // HOTSWAP_TOKEN, when it is set and is not the saved token.
    let given = api.token.clone().filter(|t| saved_here.is_none_or(|c| &c.token != t));
    let elsewhere = saved.as_ref().filter(|_| saved_here.is_none());
    if saved_here.is_none() && given.is_none() {
        return Err(match elsewhere {
            Some(c) => Failure::usage(format!(
                "not logged in to {}: the saved login is for {} and is left as it is (`hotswap logout --server {}` signs out of it)",
                api.server, c.server, c.server
            )),
            None => Failure::usage(format!("not logged in to {}", api.server)),
        });
    }
    if let Some(token) = given {
        revoke(api, &token)
            .await
            .map_err(|e| e.context(&format!("the server {} did not revoke HOTSWAP_TOKEN", api.server)))?;
        say!("Logged out of {}: HOTSWAP_TOKEN's token is revoked.", api.server);
    }
    match saved_here {
        Some(credentials) => forget_revoked(api, credentials).await,
        None => {
            if let Some(c) = elsewhere {
                say!("The saved login for {} is left as it is.", c.server);
            }
            Ok(Exit::Ok)
        }
    }
}

/// Revokes the saved token, then deletes the file. A server that refuses the
/// token (4xx: expired, already revoked) leaves nothing to revoke; a server
/// that cannot be reached keeps the file, since the token still works.
async fn forget_revoked(api: &Api, credentials: &Credentials) -> Result<Exit, Failure> {
    match revoke(api, &credentials.token).await {
        Ok(()) => {
            session::forget()?;
            say!("Logged out of {}: the token is revoked and forgotten.", api.server);
            Ok(Exit::Ok)
        }
        Err(refused) if refused.exit == Exit::Usage => {
            session::forget()?;
            say!(
                "Forgot the saved token for {}; the server no longer accepts it: {}",
                api.server,
                refused.message.lines().next().unwrap_or_default()
            );
            Ok(Exit::Ok)
        }
        Err(failed) => {
            let valid = match credentials.expires_at.as_deref() {
                Some(at) => format!("until {}", when(&serde_json::json!(at))),
                None => "until it expires".to_string(),
            };
            Err(failed.context(&format!(
                "the token was not revoked, so it stays valid {valid}; the saved login is kept so that `hotswap logout` can be tried again"
            )))
        }
    }
}

async fn revoke(api: &Api, token: &str) -> Result<(), Failure> {
    let mut api = api.clone();
    api.token = Some(token.to_string());
    api.call(Method::POST, "/api/v1/authentication/logout", None).await.map(|_| ())
}
