//! The client options (`--server`, `-o`, `--no-color`, `--tenant`, `--ca`) are
//! global, so that a client verb takes them before or after its name; the
//! server's and the offline verbs (serve, config, migrate, user, keygen,
//! module sign, agent, graph) would list them in their help and ignore them.
//! Each of those verbs gets hidden stand-ins of the options it does not use,
//! which keep them out of its help, and a command line that gives one is refused.

use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};

use super::Cli;

/// The verbs that are not client verbs.
const NOT_CLIENT: [&str; 8] = ["serve", "config", "migrate", "user", "keygen", "module", "agent", "graph"];

/// The client options each of them uses, by its path of subcommand names.
fn used_by(path: &[&str]) -> &'static [&'static str] {
    match path {
        ["module", "push"] => &["server", "ca", "tenant"],
        // The store's tenant of the new user.
        ["user", ..] => &["tenant"],
        // Its own --server and --ca (the agent's server, the CA it trusts).
        ["agent"] => &["server", "ca"],
        _ => &[],
    }
}

/// A hidden option that takes what the global one would, so that giving it
/// is refused by name rather than as an unknown argument.
fn stand_in(id: &'static str) -> Arg {
    let arg = Arg::new(id).hide(true);
    match id {
        "output" => arg.long("output").short('o'),
        "no_color" => arg.long("no-color").action(ArgAction::SetTrue),
        "server" | "tenant" | "ca" => arg.long(id),
        _ => unreachable!("not a client option: {id}"),
    }
}

const CLIENT_OPTIONS: [&str; 5] = ["server", "output", "no_color", "tenant", "ca"];

/// The command line, with each non-client verb's unused client options hidden.
pub fn command() -> Command {
    let mut command = Cli::command();
    for name in NOT_CLIENT {
        command = command.mut_subcommand(name, |verb| without_unused(verb, vec![name.to_string()]));
    }
    command
}

/// Stand-ins go on the verbs that run (leaves): a parent such as `module`
/// passes the global options on to `module push`, which uses them.
fn without_unused(mut verb: Command, path: Vec<String>) -> Command {
    let children: Vec<String> = verb.get_subcommands().map(|c| c.get_name().to_string()).collect();
    if children.is_empty() {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        for id in CLIENT_OPTIONS {
            if !used_by(&path).contains(&id) && verb.get_arguments().all(|a| a.get_id() != id) {
                verb = verb.arg(stand_in(id));
            }
        }
        return verb;
    }
    for child in children {
        let mut deeper = path.clone();
        deeper.push(child.clone());
        verb = verb.mut_subcommand(child, |c| without_unused(c, deeper));
    }
    verb
}

/// Why the command line is refused: it gives a client option to a verb that
/// does not use it.
pub fn unused_option(matches: &ArgMatches) -> Option<String> {
    let (name, mut verb) = matches.subcommand()?;
    if !NOT_CLIENT.contains(&name) {
        return None;
    }
    let mut path = vec![name];
    while let Some((child, matches)) = verb.subcommand() {
        path.push(child);
        verb = matches;
    }
    let given = CLIENT_OPTIONS.into_iter().find(|id| {
        !used_by(&path).contains(id)
            && verb.try_contains_id(id).unwrap_or(false)
            && verb.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    })?;
    Some(format!(
        "`hotswap {}` does not use --{}: it is an option of the client verbs",
        path.join(" "),
        given.replace('_', "-")
    ))
}
