use secret::SecretString;
use tokio::process::Command;

/// Seconds libpq waits for a connection unless `PGCONNECT_TIMEOUT` says
/// otherwise; without it an unreachable host hangs until the kernel gives up.
const DEFAULT_CONNECT_TIMEOUT_SECONDS: &str = "10";

/// Where and as whom to connect. Unset fields fall back to libpq's own
/// defaults and whatever `PG*` variables the environment holds.
#[derive(Debug, Clone)]
pub struct PgConnection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    pub dbname: String,
}

impl PgConnection {
    /// `database "app" on db.team.svc:5432 as alice`, for error messages.
    pub fn describe(&self) -> String {
        let mut text = format!("database {:?}", self.dbname);
        if let Some(host) = &self.host {
            text.push_str(&format!(" on {host}"));
            if let Some(port) = self.port {
                text.push_str(&format!(":{port}"));
            }
        }
        if let Some(user) = &self.user {
            text.push_str(&format!(" as {user}"));
        }
        text
    }

    /// Sets the connection through the environment: a password there is not
    /// visible to other processes in `ps`, unlike one on the command line.
    pub(super) fn apply(&self, command: &mut Command) {
        if let Some(host) = &self.host {
            command.env("PGHOST", host);
        }
        if let Some(port) = self.port {
            command.env("PGPORT", port.to_string());
        }
        if let Some(user) = &self.user {
            command.env("PGUSER", user);
        }
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password.expose_secret());
        }
        command.env("PGDATABASE", &self.dbname);
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            command.env("PGCONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_SECONDS);
        }
    }

    /// `dbname='...'` for tools that take the database only as an argument
    /// (`pg_restore --dbname`): a bare name containing `=` or starting with
    /// `postgresql://` would otherwise be read as a whole connection string.
    pub(super) fn dbname_conninfo(&self) -> String {
        let escaped = self.dbname.replace('\\', "\\\\").replace('\'', "\\'");
        format!("dbname='{escaped}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(dbname: &str) -> PgConnection {
        PgConnection {
            host: Some("db.team.svc".into()),
            port: Some(5432),
            user: Some("alice".into()),
            password: Some(SecretString::new("hunter2")),
            dbname: dbname.into(),
        }
    }

    #[test]
    fn conninfo_quotes_names_that_look_like_connection_strings() {
        assert_eq!(connection("app").dbname_conninfo(), "dbname='app'");
        assert_eq!(
            connection(r"it's host=evil \x").dbname_conninfo(),
            r"dbname='it\'s host=evil \\x'"
        );
    }

    #[test]
    fn descriptions_name_the_target_but_not_the_password() {
        let text = connection("app").describe();
        assert_eq!(text, r#"database "app" on db.team.svc:5432 as alice"#);
        assert!(!format!("{:?}", connection("app")).contains("hunter2"));
    }
}
