//! Where the client keeps its login: `$XDG_CONFIG_HOME/hotswap/credentials.json`
//! (else `~/.config/hotswap/credentials.json`), readable by its owner only.
//! `HOTSWAP_SERVER`, `HOTSWAP_TOKEN` and `HOTSWAP_CA` override what it holds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Failure;

/// The server used when nothing names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What `hotswap login` saves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub server: String,
    pub token: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The CA file given at login (`--ca`), kept for the later verbs (an absolute path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// The directory of the client's files.
pub fn config_dir() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("hotswap"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("hotswap")),
        None => Err(Failure::usage("neither XDG_CONFIG_HOME nor HOME is set: no place for the credentials file")),
    }
}

pub fn credentials_path() -> Result<PathBuf, Failure> {
    Ok(config_dir()?.join("credentials.json"))
}

/// The saved login, if any. A file that does not parse counts as none, so
/// that `hotswap login` can always replace it.
pub fn load() -> Option<Credentials> {
    match read_saved() {
        Saved::Login(credentials) => Some(credentials),
        Saved::Nothing | Saved::Unusable(_) => None,
    }
}

/// What the credentials file holds, as read.
pub enum Saved {
    Nothing,
    Login(Credentials),
    /// The file is there but cannot be used: why, to say when a request is refused for want of a token.
    Unusable(String),
}

pub fn read_saved() -> Saved {
    let Ok(path) = credentials_path() else {
        return Saved::Nothing;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Saved::Nothing,
        Err(e) => return Saved::Unusable(format!("the saved login {} cannot be read: {e}", path.display())),
    };
    match serde_json::from_str::<Credentials>(&text) {
        Ok(credentials) => Saved::Login(credentials),
        Err(e) => Saved::Unusable(format!("the saved login {} is not a login hotswap wrote ({e})", path.display())),
    }
}

/// A warning when the credentials file has become readable by others (a
/// copy, a `chmod`): it holds a bearer token, which anyone who reads it can use.
pub fn exposure_warning() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = credentials_path().ok()?;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Some(format!(
                "warning: {} is readable by other users (mode {mode:03o}) and holds a bearer token: run `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
    None
}

/// Writes the file with mode 0600 from its creation on, so the token is never
/// readable by others, not even for a moment.
pub fn save(credentials: &Credentials) -> Result<PathBuf, Failure> {
    use std::io::Write;
    let path = credentials_path()?;
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| Failure::general(format!("cannot create {}: {e}", dir.display())))?;
    let text = serde_json::to_string_pretty(credentials).map_err(|e| Failure::general(e.to_string()))?;
    let tmp = dir.join(".credentials.json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = |options: &std::fs::OpenOptions| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write(&options).map_err(|e| Failure::general(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Removes the saved login; true when there was one.
pub fn forget() -> Result<bool, Failure> {
    let path = credentials_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::general(format!("cannot remove {}: {e}", path.display()))),
    }
}

/// The server and token a command uses: `--server`, `HOTSWAP_SERVER` (or the
/// older `HOTSWAP_URL`), the saved login, the default; `HOTSWAP_TOKEN`, else
/// the saved token when it was issued by that same server. The CA an https://
/// server is checked against: `--ca`, `HOTSWAP_CA`, else the one saved with
/// that same server's login, else none (the host's trusted CAs).
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
    pub ca: Option<PathBuf>,
    pub saved: Option<Credentials>,
    /// Why the credentials file, which is there, was not used.
    pub saved_problem: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A server URL as compared and used: without a trailing slash, its scheme
/// and host in lower case (`HTTP://Host:8080/` is `http://host:8080`).
pub fn normalise(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    match server.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!("{}://{}{path}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
        }
        None => server.to_string(),
    }
}

/// Refuses a server URL the client cannot use, saying what it needs; the
/// usual slip is `--server host:port` without its scheme.
pub fn check_server(server: &str) -> Result<(), Failure> {
    let host = server.strip_prefix("http://").or_else(|| server.strip_prefix("https://"));
    match host {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        Some(_) => Err(Failure::usage(format!("the server URL '{server}' names no host"))),
        None => Err(Failure::usage(format!(
            "the server URL '{server}' must start with http:// or https:// (as in http://127.0.0.1:8080)"
        ))),
    }
}

pub fn resolve(server_flag: Option<&str>, ca_flag: Option<&std::path::Path>) -> Target {
    // Said once per command: every command that may send the token resolves its target once.
    if let Some(warning) = exposure_warning() {
        super::output::complain!("hotswap: {warning}");
    }
    let (saved, saved_problem) = match read_saved() {
        Saved::Login(credentials) => (Some(credentials), None),
        Saved::Unusable(why) => (None, Some(why)),
        Saved::Nothing => (None, None),
    };
    let server = server_flag
        .map(str::to_string)
        .or_else(|| env("HOTSWAP_SERVER"))
        .or_else(|| env("HOTSWAP_URL"))
        .or_else(|| saved.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let server = normalise(&server);
    let same_server = saved.as_ref().filter(|c| normalise(&c.server) == server);
    let token = env("HOTSWAP_TOKEN").or_else(|| same_server.filter(|c| !c.token.is_empty()).map(|c| c.token.clone()));
    // A relative path names a file in the directory the command runs in; login
    // saves it made absolute, so that later verbs find it from anywhere.
    let ca = ca_flag
        .map(std::path::Path::to_path_buf)
        .or_else(|| env("HOTSWAP_CA").map(PathBuf::from))
        .map(|ca| std::path::absolute(&ca).unwrap_or(ca))
        .or_else(|| same_server.and_then(|c| c.ca.clone()).map(PathBuf::from));
    Target { server, token, ca, saved, saved_problem }
}

impl Target {
    /// Why no saved token was sent, when the saved login could have been
    /// meant: it is for another server, or the file cannot be used.
    pub fn login_hint(&self) -> Option<String> {
        if let Some(why) = &self.saved_problem {
            return Some(format!("{why}; sign in again with `hotswap login`"));
        }
        let saved = self.saved.as_ref().filter(|c| normalise(&c.server) != self.server)?;
        Some(format!(
            "the saved login is for {}, not {}: give --server {} to use it, or sign in with `hotswap login --server {}`",
            saved.server, self.server, saved.server, self.server
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_compared_without_case_in_scheme_and_host() {
        assert_eq!(normalise("HTTP://Example.COM:8080/"), "http://example.com:8080");
        assert_eq!(normalise("https://h/Base/"), "https://h/Base");
        assert!(check_server("http://h:1").is_ok());
        assert!(check_server("127.0.0.1:8080").unwrap_err().message.contains("must start with http://"));
        assert!(check_server("ftp://x").is_err());
        assert!(check_server("http://").is_err());
    }
}
