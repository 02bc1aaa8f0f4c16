//! Opening the connection to Redis, with the clear errors a bad configuration gets at
//! start: a malformed URL, an unreachable host (within a timeout), a refused password,
//! a Redis too old for the commands the engine uses. Passwords never appear in a
//! message.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use crate::error::{Error, ErrorKind, Result};

/// The oldest Redis with every command the engine uses (`XTRIM … MINID`: 6.2).
pub const MIN_REDIS: (u32, u32) = (6, 2);

/// Opens a multiplexed connection to `url` (`redis://`, `rediss://`, `unix://`, with
/// user and password), failing within `timeout`, and checks the server's version.
pub async fn open(url: &str, timeout: Duration) -> Result<MultiplexedConnection> {
    let shown = redacted(url);
    let client = Client::open(url)
        .map_err(|e| Error::invalid(format!("cluster url {shown} is not valid: {e}")))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| connect_error(&shown, timeout, &e))?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .map_err(|e| connect_error(&shown, timeout, &e))?;
    check_version(&shown, &info)?;
    Ok(con)
}

fn connect_error(shown: &str, timeout: Duration, e: &RedisError) -> Error {
    let refused_password = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"));
    if refused_password {
        Error::invalid(format!(
            "cluster: Redis at {shown} refused the user or password: {e}"
        ))
    } else {
        Error::new(
            ErrorKind::Io,
            format!(
                "cluster: cannot reach Redis at {shown} within {} ms: {e}",
                timeout.as_millis()
            ),
        )
    }
}

/// The server's `redis_version` from `INFO server` must be at least [`MIN_REDIS`].
fn check_version(shown: &str, info: &str) -> Result<()> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))
        .ok_or_else(|| {
            Error::invalid(format!("cluster: {shown} does not report a Redis version"))
        })?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if found < MIN_REDIS {
        return Err(Error::invalid(format!(
            "cluster: {shown} runs Redis {version}; cluster mode needs {}.{} or later (XTRIM MINID)",
            MIN_REDIS.0, MIN_REDIS.1
        )));
    }
    Ok(())
}

/// `url` with its password (in the authority, or a `pass=` query parameter) replaced
/// by `***`.
fn redacted(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = authority_start..authority_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("pass" | "password", _)) => {
                    format!("{}=***", pair.split('=').next().unwrap_or(""))
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redacted("redis://alice:s3cret@10.0.0.1:6379/0"),
            "redis://alice:***@10.0.0.1:6379/0"
        );
        assert_eq!(redacted("rediss://:s3cret@host"), "rediss://:***@host");
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
        assert_eq!(redacted("redis://user@host"), "redis://user@host");
        assert_eq!(
            redacted("unix:///run/redis.sock?user=bob&pass=s3cret&db=1"),
            "unix:///run/redis.sock?user=bob&pass=***&db=1"
        );
        // An '@' in the path or query is not an authority.
        assert_eq!(redacted("redis://host/0?x=a@b"), "redis://host/0?x=a@b");
    }

    #[test]
    fn versions_before_6_2_are_refused_with_the_version_found() {
        assert!(check_version("r", "# Server\r\nredis_version:7.0.15\r\n").is_ok());
        assert!(check_version("r", "redis_version:6.2.0\n").is_ok());
        let err = check_version("r", "redis_version:6.0.16\n").unwrap_err();
        assert!(err.message().contains("runs Redis 6.0.16"), "{err}");
        assert!(check_version("r", "no version here").is_err());
    }
}
