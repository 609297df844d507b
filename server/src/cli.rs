//! The command line: serve (the default) or replay a stream's topics.

pub const USAGE: &str = "usage:
  pulseboard [serve]                    run the service (settings from PULSEBOARD_* variables)
  pulseboard replay [--stream NAME] [--topic NAME] [--reset]
                                        re-process a stream's topics (sensors by default; the
                                        sales streams replay together) from their earliest
                                        offsets; --topic reads that topic instead; --reset
                                        empties the stream's tables and figures first
  pulseboard create-user NAME ROLE      create an account (ROLE: viewer, editor or admin);
                                        its password is read from standard input
  pulseboard create-ingest-key NAME     make a key for the ingest APIs and print
                                        \"<access key id> <secret>\" (shown only this once)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Serve,
    Replay {
        stream: Option<String>,
        topic: Option<String>,
        reset: bool,
    },
    CreateUser {
        username: String,
        role: app::accounts::Role,
    },
    CreateIngestKey {
        name: String,
    },
    Help,
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut args = args.iter().map(String::as_str);
    match args.next() {
        None | Some("serve") => match args.next() {
            None => Ok(Command::Serve),
            Some(extra) => Err(format!("unexpected argument {extra:?}\n{USAGE}")),
        },
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("replay") => {
            let (mut stream, mut topic, mut reset) = (None, None, false);
            while let Some(arg) = args.next() {
                match arg {
                    "--reset" => reset = true,
                    "--stream" => match args.next() {
                        Some(name) if !name.is_empty() => stream = Some(name.to_string()),
                        _ => return Err(format!("--stream needs a stream name\n{USAGE}")),
                    },
                    "--topic" => match args.next() {
                        Some(name) if !name.is_empty() => topic = Some(name.to_string()),
                        _ => return Err(format!("--topic needs a topic name\n{USAGE}")),
                    },
                    other => return Err(format!("unknown option {other:?}\n{USAGE}")),
                }
            }
            Ok(Command::Replay {
                stream,
                topic,
                reset,
            })
        }
        Some("create-user") => match (args.next(), args.next(), args.next()) {
            (Some(username), Some(role), None) => match app::accounts::Role::parse(role) {
                Some(role) => Ok(Command::CreateUser {
                    username: username.to_string(),
                    role,
                }),
                None => Err(format!(
                    "unknown role {role:?}: expected viewer, editor or admin\n{USAGE}"
                )),
            },
            _ => Err(format!("create-user needs a name and a role\n{USAGE}")),
        },
        Some("create-ingest-key") => match (args.next(), args.next()) {
            (Some(name), None) => Ok(Command::CreateIngestKey {
                name: name.to_string(),
            }),
            _ => Err(format!("create-ingest-key needs a name\n{USAGE}")),
        },
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse(&args("")), Ok(Command::Serve));
        assert_eq!(parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse(&args("--help")), Ok(Command::Help));
        assert_eq!(
            parse(&args("replay")),
            Ok(Command::Replay {
                stream: None,
                topic: None,
                reset: false
            })
        );
        assert_eq!(
            parse(&args("replay --reset --topic t1 --stream rides")),
            Ok(Command::Replay {
                stream: Some("rides".into()),
                topic: Some("t1".into()),
                reset: true
            })
        );
    }

    #[test]
    fn create_user_takes_a_name_and_a_known_role() {
        assert_eq!(
            parse(&args("create-user ops admin")),
            Ok(Command::CreateUser {
                username: "ops".into(),
                role: app::accounts::Role::Admin
            })
        );
        assert!(
            parse(&args("create-user ops root"))
                .unwrap_err()
                .starts_with("unknown role \"root\"")
        );
        assert!(
            parse(&args("create-user ops"))
                .unwrap_err()
                .starts_with("create-user needs")
        );
    }

    #[test]
    fn mistakes_are_explained() {
        assert!(
            parse(&args("replay --topic"))
                .unwrap_err()
                .starts_with("--topic needs a topic name")
        );
        assert!(
            parse(&args("replay --fast"))
                .unwrap_err()
                .starts_with("unknown option \"--fast\"")
        );
        assert!(
            parse(&args("serv"))
                .unwrap_err()
                .starts_with("unknown command \"serv\"")
        );
        assert!(
            parse(&args("serve now"))
                .unwrap_err()
                .starts_with("unexpected argument \"now\"")
        );
    }
}
