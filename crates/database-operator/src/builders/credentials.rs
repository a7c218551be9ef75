//! How a PostgreSQL Pod proves the credentials Secret right: an init container that sets the
//! role's password from the Secret when the server starts on existing data, and a readiness
//! probe that logs in with the Secret's current password.
//!
//! Together they make "Ready" mean that clients holding the Secret get in: the client
//! Service routes only to ready Pods, and the Database is Ready only once it routes to its
//! primary. Without them a Database re-created over its retained volume went Ready with a
//! new password the old data did not know (`pg_isready` does not authenticate).
//!
//! Both scripts use only what the official `postgres` image has (bash, `postgres`, `psql`).
//! The password is read from the mounted Secret, never passed as an argument.

use api::{Database, names};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, ExecAction, KeyToPath, Probe, SecretVolumeSource, Volume, VolumeMount,
};
use kube::ResourceExt;

/// The volume holding the Secret's password, and where the containers see it.
pub const VOLUME: &str = "credentials";
pub const MOUNT: &str = "/etc/pgop/credentials";
pub const PASSWORD_FILE: &str = "/etc/pgop/credentials/password";
/// The environment variable the scripts read the password file's path from.
pub const PASSWORD_FILE_ENV: &str = "PGOP_PASSWORD_FILE";

const SET_PASSWORD: &str = include_str!("scripts/set-password.sh");
const LOGIN_CHECK: &str = include_str!("scripts/login-check.sh");

/// The Secret's password as a file readable by the postgres group (the Pod's fsGroup) only.
pub fn volume(db: &Database) -> Volume {
    Volume {
        name: VOLUME.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(names::credentials_secret(&db.name_any())),
            items: Some(vec![KeyToPath {
                key: names::SECRET_PASSWORD.to_string(),
                path: "password".to_string(),
                mode: None,
            }]),
            default_mode: Some(0o440),
            optional: Some(false),
        }),
        ..Volume::default()
    }
}

pub fn mount() -> VolumeMount {
    VolumeMount {
        name: VOLUME.to_string(),
        mount_path: MOUNT.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

pub fn password_file_env() -> EnvVar {
    EnvVar {
        name: PASSWORD_FILE_ENV.to_string(),
        value: Some(PASSWORD_FILE.to_string()),
        ..EnvVar::default()
    }
}

/// The init container: the PostgreSQL container's image, environment, mounts and security
/// context (passed in), running the set-password script instead of the server.
pub fn set_password_container(postgres: &Container) -> Container {
    Container {
        name: "set-password".to_string(),
        image: postgres.image.clone(),
        command: Some(bash(SET_PASSWORD, &[])),
        env: postgres.env.clone(),
        volume_mounts: postgres.volume_mounts.clone(),
        security_context: postgres.security_context.clone(),
        resources: postgres.resources.clone(),
        ..Container::default()
    }
}

/// Ready when a password login with the Secret's credentials succeeds over TCP. The user and
/// database are written out from the spec (both are immutable identifiers).
pub fn login_probe(db: &Database) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(bash(
                LOGIN_CHECK,
                &[&db.spec.username, &db.spec.database_name],
            )),
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// `bash -c SCRIPT NAME ARGS...`: the script's text rides in the Pod spec.
fn bash(script: &str, args: &[&str]) -> Vec<String> {
    let mut command = vec!["bash".to_string(), "-c".to_string(), script.to_string()];
    command.push("pgop".to_string());
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    #[test]
    fn the_password_is_never_an_argument() {
        let db = database("shop");
        let probe = login_probe(&db);
        let command = probe.exec.and_then(|e| e.command).unwrap_or_default();
        assert_eq!(command[..2], ["bash", "-c"]);
        assert_eq!(command[3..], ["pgop", "shop_owner", "shop"]);
        // The script reads the mounted Secret as it is now, not the environment the container
        // started with, which would still hold a password the Secret no longer has.
        assert!(command[2].contains("PGOP_PASSWORD_FILE"));
        assert!(!command[2].contains("POSTGRES_PASSWORD"));
    }

    #[test]
    fn the_secret_is_mounted_for_the_postgres_group_only() {
        let v = volume(&database("shop"));
        let secret = v.secret.unwrap_or_default();
        assert_eq!(secret.secret_name.as_deref(), Some("shop-credentials"));
        assert_eq!(secret.default_mode, Some(0o440));
        let items = secret.items.unwrap_or_default();
        assert_eq!(items.len(), 1, "only the password is mounted");
        assert_eq!(items[0].key, "password");
        assert!(mount().read_only.unwrap_or(false));
    }

    #[test]
    fn the_init_container_runs_as_the_server_would() {
        let postgres = Container {
            name: "postgres".into(),
            image: Some("postgres:17".into()),
            env: Some(vec![password_file_env()]),
            volume_mounts: Some(vec![mount()]),
            ..Container::default()
        };
        let init = set_password_container(&postgres);
        assert_eq!(init.image, postgres.image);
        assert_eq!(init.env, postgres.env);
        assert_eq!(init.volume_mounts, postgres.volume_mounts);
        assert!(init.command.unwrap_or_default()[2].contains("postgres --single"));
    }
}
