//! Which identities hold which roles, and (for development) which bearer
//! tokens stand for which identity — read once at startup from files.
//!
//! Roles file: one identity per line, `identity role[,role…]`; `#` starts a
//! comment. Tokens file: `identity token` per line.

use super::Role;
use crate::startup::{StartError, read_config_file};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;

/// Access control settings.
#[derive(Args, Clone, Debug, Default)]
pub struct AuthArgs {
    /// File mapping identities to roles. Turns authentication and role checks
    /// on; without it every caller is `anonymous` holding every role
    /// (development only).
    #[arg(long, env = "EKTP_AUTH_ROLES_FILE")]
    pub auth_roles_file: Option<PathBuf>,
    /// File mapping development bearer tokens to identities
    /// (`authorization: Bearer <token>`). Certificates are preferred.
    #[arg(long, env = "EKTP_AUTH_TOKENS_FILE", requires = "auth_roles_file")]
    pub auth_tokens_file: Option<PathBuf>,
}

/// The loaded access policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `false`: authentication is off, every caller holds every role.
    pub enabled: bool,
    roles: HashMap<String, Vec<Role>>,
    tokens: Vec<(Vec<u8>, String)>,
}

impl Policy {
    /// Reads the files `args` names.
    pub fn load(args: &AuthArgs) -> Result<Self, StartError> {
        let Some(roles_file) = &args.auth_roles_file else {
            return Ok(Self::default());
        };
        let text = text(
            read_config_file(roles_file, "--auth-roles-file")?,
            "--auth-roles-file",
        )?;
        let roles = parse_roles(&text).map_err(StartError::Setup)?;
        let tokens = match &args.auth_tokens_file {
            Some(file) => parse_tokens(&text_of(file)?).map_err(StartError::Setup)?,
            None => Vec::new(),
        };
        Ok(Self {
            enabled: true,
            roles,
            tokens,
        })
    }

    /// A policy from in-memory tables (tests).
    pub fn from_tables(roles: HashMap<String, Vec<Role>>, tokens: Vec<(String, String)>) -> Self {
        Self {
            enabled: true,
            roles,
            tokens: tokens
                .into_iter()
                .map(|(token, identity)| (token.into_bytes(), identity))
                .collect(),
        }
    }

    /// The roles `identity` holds (none if it is not listed).
    pub fn roles_of(&self, identity: &str) -> &[Role] {
        self.roles.get(identity).map_or(&[], Vec::as_slice)
    }

    /// The identity a bearer token stands for. Every token is compared in
    /// constant time, so timing does not reveal how much of a guess matched.
    pub fn identity_of_token(&self, token: &str) -> Option<&str> {
        let mut found = None;
        for (known, identity) in &self.tokens {
            if constant_time_eq(known, token.as_bytes()) {
                found = Some(identity.as_str());
            }
        }
        found
    }
}

fn text_of(file: &std::path::Path) -> Result<String, StartError> {
    text(
        read_config_file(file, "--auth-tokens-file")?,
        "--auth-tokens-file",
    )
}

fn text(bytes: Vec<u8>, flag: &str) -> Result<String, StartError> {
    String::from_utf8(bytes).map_err(|_| StartError::Setup(format!("{flag} is not valid UTF-8")))
}

fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.split('#').next().unwrap_or("").trim();
        (!line.is_empty()).then(|| (i + 1, line.split_whitespace().collect()))
    })
}

fn parse_roles(text: &str) -> Result<HashMap<String, Vec<Role>>, String> {
    let mut table = HashMap::new();
    for (n, fields) in lines(text) {
        let [identity, roles] = fields.as_slice() else {
            return Err(format!(
                "roles file line {n}: expected `identity role[,role…]`"
            ));
        };
        let roles = roles
            .split(',')
            .map(|r| {
                r.parse::<Role>()
                    .map_err(|e| format!("roles file line {n}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if table.insert((*identity).to_owned(), roles).is_some() {
            return Err(format!("roles file line {n}: {identity} is listed twice"));
        }
    }
    Ok(table)
}

fn parse_tokens(text: &str) -> Result<Vec<(Vec<u8>, String)>, String> {
    lines(text)
        .map(|(n, fields)| match fields.as_slice() {
            [identity, token] if token.len() >= 16 => {
                Ok((token.as_bytes().to_vec(), (*identity).to_owned()))
            }
            [_, _] => Err(format!(
                "tokens file line {n}: tokens must be at least 16 characters"
            )),
            _ => Err(format!("tokens file line {n}: expected `identity token`")),
        })
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_file_lines_map_identities_to_roles() {
        let table = parse_roles("# office\nregistrar-1 registrar\nops operator,auditor\n").unwrap();
        assert_eq!(table["registrar-1"], vec![Role::Registrar]);
        assert_eq!(table["ops"], vec![Role::Operator, Role::Auditor]);
    }

    #[test]
    fn bad_roles_files_are_refused_with_the_line() {
        assert!(parse_roles("x wizard").unwrap_err().contains("line 1"));
        assert!(
            parse_roles("a registrar\na operator")
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse_roles("lonely").is_err());
    }

    #[test]
    fn tokens_resolve_to_their_identity_only_when_equal() {
        let policy = Policy {
            enabled: true,
            roles: HashMap::new(),
            tokens: parse_tokens("dev-ops 0123456789abcdef0123").unwrap(),
        };
        assert_eq!(
            policy.identity_of_token("0123456789abcdef0123"),
            Some("dev-ops")
        );
        assert_eq!(policy.identity_of_token("0123456789abcdef0124"), None);
        assert!(parse_tokens("dev short").is_err());
    }
}
