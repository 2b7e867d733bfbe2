//! `weir tokens create|list|revoke|rotate-admin`, `weir principals ...`, `weir audit`.

use super::client::Context;
use super::{CliResult, output};
use anyhow::bail;
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (once: only its hash is kept). A missing principal is
    /// created as a user.
    #[command(
        after_help = "Example:\n  weir tokens create --principal ci-bot --lifetime 30d --comment \"CI deploys\""
    )]
    Create {
        /// The principal the token authenticates (default: the caller).
        #[arg(long)]
        principal: Option<String>,
        /// How long it works: `30d`, `12h`, `90m`, `3600s`, `2w` (default: until revoked).
        #[arg(long, value_parser = parse_lifetime)]
        lifetime: Option<u64>,
        /// Free text shown by `tokens list`.
        #[arg(long)]
        comment: Option<String>,
    },
    /// List tokens (never their values).
    #[command(after_help = "Example:\n  weir tokens list --principal ci-bot")]
    List {
        /// Only this principal's tokens.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Revoke a token by its id.
    #[command(after_help = "Example:\n  weir tokens revoke 7f3a9c01d2e4b658")]
    Revoke {
        /// The token id (`tokens list`).
        token_id: String,
    },
    /// Replace the admin token: the new one is written to the node's `<data-dir>/admin-token`
    /// and printed; every other token of `admin` stops working.
    #[command(after_help = "Example:\n  weir tokens rotate-admin")]
    RotateAdmin,
}

/// Principal commands.
#[derive(Debug, Subcommand)]
pub enum PrincipalsCommand {
    /// Create a user, group or service principal.
    #[command(after_help = "Example:\n  weir principals create data-eng --kind group")]
    Create {
        /// Its name.
        name: String,
        /// `user` (default), `group` or `service-principal`.
        #[arg(long, default_value = "user")]
        kind: String,
    },
    /// List principals with their groups.
    #[command(after_help = "Example:\n  weir principals list")]
    List,
    /// Delete a principal, its tokens, memberships and permissions.
    #[command(after_help = "Example:\n  weir principals delete bob")]
    Delete {
        /// Its name.
        name: String,
    },
    /// Add a user or service principal to a group.
    #[command(after_help = "Example:\n  weir principals add-member data-eng bob")]
    AddMember {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
    /// Remove a member from a group.
    #[command(after_help = "Example:\n  weir principals remove-member data-eng bob")]
    RemoveMember {
        /// The group.
        group: String,
        /// The member.
        member: String,
    },
}

/// Filters of `weir audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only calls of this principal (`system` for run state changes).
    #[arg(long)]
    principal: Option<String>,
    /// Only actions starting with this (`jobs.`, `runs.state`, `tokens.create`).
    #[arg(long)]
    action: Option<String>,
    /// Only this target (`job:3`, `run:17`, `token:ab12...`).
    #[arg(long)]
    target: Option<String>,
    /// Only entries at or after this time (RFC 3339, or milliseconds since the epoch).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only entries at or before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// At most this many entries (newest first).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Parses a lifetime: a number with `s`, `m`, `h`, `d` or `w`; returns seconds.
pub fn parse_lifetime(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a lifetime such as 30d, 12h, 90m or 3600s"))?;
    let factor = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{s:?}: the unit is one of s, m, h, d, w")),
    };
    match n.checked_mul(factor) {
        Some(0) => Err("a lifetime is at least 1s".into()),
        Some(v) => Ok(v),
        None => Err(format!("{s:?} is too long")),
    }
}

/// Parses RFC 3339 or milliseconds since the epoch.
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is neither RFC 3339 nor milliseconds: {e}"))
}

fn token_rows(infos: &[Value]) -> Vec<Vec<String>> {
    infos
        .iter()
        .map(|t| {
            let expiry = t["expiry_time"].as_i64().unwrap_or(-1);
            vec![
                t["token_id"].as_str().unwrap_or_default().to_string(),
                t["principal"].as_str().unwrap_or_default().to_string(),
                t["state"].as_str().unwrap_or_default().to_string(),
                output::time(t["creation_time"].as_i64().unwrap_or(0)),
                if expiry < 0 {
                    "never".into()
                } else {
                    output::time(expiry)
                },
                t["comment"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect()
}

/// Runs a tokens command.
pub async fn tokens(ctx: &Context, cmd: TokensCommand) -> CliResult {
    match cmd {
        TokensCommand::Create {
            principal,
            lifetime,
            comment,
        } => {
            let mut body = json!({});
            if let Some(p) = principal {
                body["principal"] = json!(p);
            }
            if let Some(l) = lifetime {
                body["lifetime_seconds"] = json!(l);
            }
            if let Some(c) = comment {
                body["comment"] = json!(c);
            }
            let out = ctx.post("/api/weir/tokens", &body).await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                let info = &out["token_info"];
                if out["principal_created"] == true {
                    eprintln!(
                        "created user {}",
                        info["principal"].as_str().unwrap_or_default()
                    );
                }
                eprintln!(
                    "token {} for {} (shown once; keep it secret):",
                    info["token_id"].as_str().unwrap_or_default(),
                    info["principal"].as_str().unwrap_or_default()
                );
                println!("{}", out["token_value"].as_str().unwrap_or_default());
            }
        }
        TokensCommand::List { principal } => {
            let q: Vec<(&str, String)> = principal
                .map(|p| vec![("principal", p)])
                .unwrap_or_default();
            let out = ctx.get("/api/weir/tokens", &q).await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                let rows = token_rows(out["token_infos"].as_array().map_or(&[][..], Vec::as_slice));
                print!(
                    "{}",
                    output::table(
                        &[
                            "TOKEN_ID",
                            "PRINCIPAL",
                            "STATE",
                            "CREATED",
                            "EXPIRES",
                            "COMMENT"
                        ],
                        &rows
                    )
                );
            }
        }
        TokensCommand::Revoke { token_id } => {
            let out = ctx
                .post("/api/weir/tokens/revoke", &json!({"token_id": token_id}))
                .await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                println!("revoked token {token_id}");
            }
        }
        TokensCommand::RotateAdmin => {
            let out = ctx
                .post("/api/weir/tokens/rotate-admin", &json!({}))
                .await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                eprintln!(
                    "new admin token written to {} on the node (other admin tokens are revoked):",
                    out["path"].as_str().unwrap_or_default()
                );
                println!("{}", out["token_value"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a principals command.
pub async fn principals(ctx: &Context, cmd: PrincipalsCommand) -> CliResult {
    let (out, said) = match cmd {
        PrincipalsCommand::Create { name, kind } => {
            let kind = kind.to_ascii_uppercase().replace('-', "_");
            let out = ctx
                .post("/api/weir/principals", &json!({"name": name, "kind": kind}))
                .await?;
            (
                out,
                format!("created {} {name}", kind.to_lowercase().replace('_', " ")),
            )
        }
        PrincipalsCommand::List => {
            let out = ctx.get("/api/weir/principals", &[]).await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                let rows: Vec<Vec<String>> = out["principals"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|p| {
                        vec![
                            p["name"].as_str().unwrap_or_default().to_string(),
                            p["kind"].as_str().unwrap_or_default().to_string(),
                            p["groups"]
                                .as_array()
                                .map(|g| {
                                    g.iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(",")
                                })
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!("{}", output::table(&["NAME", "KIND", "GROUPS"], &rows));
            }
            return Ok(ExitCode::SUCCESS);
        }
        PrincipalsCommand::Delete { name } => {
            let out = ctx
                .post("/api/weir/principals/delete", &json!({"name": name}))
                .await?;
            (out, format!("deleted {name}"))
        }
        PrincipalsCommand::AddMember { group, member } => {
            let out = ctx
                .post(
                    "/api/weir/principals/members/add",
                    &json!({"group": group, "member": member}),
                )
                .await?;
            (out, format!("added {member} to {group}"))
        }
        PrincipalsCommand::RemoveMember { group, member } => {
            let out = ctx
                .post(
                    "/api/weir/principals/members/remove",
                    &json!({"group": group, "member": member}),
                )
                .await?;
            (out, format!("removed {member} from {group}"))
        }
    };
    if ctx.json() {
        ctx.print_json(&out);
    } else {
        println!("{said}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `weir audit`.
pub async fn audit(ctx: &Context, args: AuditArgs) -> CliResult {
    if !(1..=1000).contains(&args.limit) {
        bail!("--limit must be between 1 and 1000");
    }
    let mut q: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    for (k, v) in [
        ("principal", args.principal),
        ("action", args.action),
        ("target", args.target),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    if let Some(s) = args.since {
        q.push(("since", s.to_string()));
    }
    if let Some(u) = args.until {
        q.push(("until", u.to_string()));
    }
    let out = ctx.get("/api/weir/audit", &q).await?;
    if ctx.json() {
        ctx.print_json(&out);
    } else {
        let rows: Vec<Vec<String>> = out["entries"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|e| {
                let principal = e["principal"].as_str().unwrap_or_default();
                vec![
                    output::time(e["time"].as_i64().unwrap_or(0)),
                    if principal.is_empty() {
                        "-".into()
                    } else {
                        principal.to_string()
                    },
                    e["action"].as_str().unwrap_or_default().to_string(),
                    e["target"].as_str().unwrap_or_default().to_string(),
                    e["outcome"].as_str().unwrap_or_default().to_string(),
                    e["source"].as_str().unwrap_or_default().to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(
                &["TIME", "PRINCIPAL", "ACTION", "TARGET", "OUTCOME", "SOURCE"],
                &rows
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_take_units() {
        assert_eq!(parse_lifetime("30d"), Ok(30 * 86_400));
        assert_eq!(parse_lifetime("12h"), Ok(12 * 3600));
        assert_eq!(parse_lifetime("90m"), Ok(5400));
        assert_eq!(parse_lifetime("3600s"), Ok(3600));
        assert_eq!(parse_lifetime("2w"), Ok(2 * 604_800));
        assert_eq!(parse_lifetime("45"), Ok(45));
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("3y").unwrap_err().contains("unit"));
        assert!(parse_lifetime("soon").is_err());
    }
}
