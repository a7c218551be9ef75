//! What the controller renders into a Job's environment (`backup_job::request`), the Job's
//! command line parses back into the same request. The subcommands read the process
//! environment, which a test must not change while others run in the same process, so each
//! case runs again in a child process of this test binary with exactly the rendered
//! environment, Secrets resolved, and asserts there.

use super::{Cli, Command};
use backup_data::storage::{BackupRef, RunId, StorageConfig};
use backup_job::{
    Connection, Destination, DumpJob, EnvEntry, EnvValue, PurgeJob, RestoreJob, S3Destination,
    SecretKey, Series, VerifyJob,
};
use clap::Parser as _;

/// Set in the child process, which parses instead of spawning.
const CHILD: &str = "BACKUP_OPERATOR_ROUND_TRIP_CHILD";

/// What the kubelet would read from a Secret: distinct per key, so a swapped key shows.
fn secret_value(key: &SecretKey) -> String {
    format!("{}/{}", key.secret, key.key)
}

/// In the child, the command line `backup-operator <subcommand>` parsed from the
/// environment. In the parent, `None` once the child process, running test `test` with
/// `env`, has passed.
fn parsed_in_child(test: &str, subcommand: &str, env: &[EnvEntry]) -> Option<Command> {
    if std::env::var_os(CHILD).is_some() {
        let cli = Cli::try_parse_from(["backup-operator", subcommand])
            .unwrap_or_else(|error| panic!("the rendered environment does not parse: {error}"));
        return Some(cli.command);
    }
    let resolved = env.iter().map(|entry| {
        let value = match &entry.value {
            EnvValue::Plain(value) => value.clone(),
            EnvValue::FromSecret(key) => secret_value(key),
        };
        (entry.name, value)
    });
    // libtest names a test by its path without the crate.
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([&format!("{module}::{test}"), "--exact", "--nocapture"])
        .env_clear()
        .envs(resolved)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    None
}

fn connection() -> Connection {
    Connection {
        host: "shop.prod.svc".into(),
        port: 5432,
        user: SecretKey::new("shop-credentials", "username"),
        password: SecretKey::new("shop-credentials", "password"),
        dbname: SecretKey::new("shop-credentials", "database"),
    }
}

fn series() -> Series {
    Series {
        database: "shop".into(),
        backup: "nightly".into(),
    }
}

fn directory() -> Destination {
    Destination::Directory {
        path: "/backups".into(),
    }
}

fn assert_connection(args: &super::PgArgs, want: &Connection) {
    let got = args.connection();
    assert_eq!(got.host.as_deref(), Some(want.host.as_str()));
    assert_eq!(got.port, Some(want.port));
    assert_eq!(got.user, Some(secret_value(&want.user)));
    let password = got.password.as_ref().map(|p| p.expose_secret().to_owned());
    assert_eq!(password, Some(secret_value(&want.password)));
    assert_eq!(got.dbname, secret_value(&want.dbname));
}

fn assert_destination(got: StorageConfig, want: &Destination) {
    match (got, want) {
        (StorageConfig::Directory { path }, Destination::Directory { path: want }) => {
            assert_eq!(path.to_str(), Some(want.as_str()));
        }
        (StorageConfig::S3(got), Destination::S3(want)) => {
            assert_eq!(got.endpoint.as_deref(), Some(want.endpoint.as_str()));
            assert_eq!(got.bucket, want.bucket);
            assert_eq!(Some(got.prefix), want.prefix);
            assert_eq!(Some(got.region), want.region);
            assert_eq!(got.path_style, want.force_path_style);
            assert_eq!(got.allow_http, want.allow_http);
            assert_eq!(got.access_key_id, secret_value(&want.access_key_id));
            assert_eq!(
                got.secret_access_key.expose_secret(),
                secret_value(&want.secret_access_key)
            );
        }
        (got, want) => panic!("parsed {got:?} from {want:?}"),
    }
}

fn backup_ref(series: &Series) -> BackupRef {
    BackupRef::new(&series.database, &series.backup).unwrap()
}

#[test]
fn a_dump_job_to_s3_parses_into_the_request_it_was_rendered_from() {
    let job = DumpJob {
        connection: connection(),
        series: series(),
        run_id: "20260102T020000Z".into(),
        retention: 3,
        destination: Destination::S3(S3Destination {
            endpoint: "http://minio:9000".into(),
            bucket: "backups".into(),
            prefix: Some("team".into()),
            region: Some("eu-west-1".into()),
            force_path_style: false,
            allow_http: true,
            access_key_id: SecretKey::new("s3-creds", "accessKeyId"),
            secret_access_key: SecretKey::new("s3-creds", "secretAccessKey"),
        }),
        compression: Some("zstd:7".into()),
        jobs: 4,
    };
    let test = "a_dump_job_to_s3_parses_into_the_request_it_was_rendered_from";
    let Some(command) = parsed_in_child(test, "dump", &job.env()) else {
        return;
    };
    let Command::Dump(args) = command else {
        panic!("parsed as {command:?}");
    };
    assert_connection(&args.pg, &job.connection);
    assert_eq!(
        args.series.backup(&args.pg.dbname).unwrap(),
        backup_ref(&job.series)
    );
    assert_eq!(
        args.series.run_id().unwrap(),
        Some(RunId::new(&job.run_id).unwrap())
    );
    assert_eq!(args.retention, job.retention);
    assert_eq!(args.compression.map(|c| c.to_string()), job.compression);
    assert_eq!(args.jobs, job.jobs);
    assert_destination(args.storage.config().unwrap(), &job.destination);
}

#[test]
fn a_restore_job_from_a_directory_parses_into_the_request_it_was_rendered_from() {
    let job = RestoreJob {
        connection: connection(),
        series: series(),
        run_id: None,
        destination: directory(),
        jobs: 3,
    };
    let test = "a_restore_job_from_a_directory_parses_into_the_request_it_was_rendered_from";
    let Some(command) = parsed_in_child(test, "restore", &job.env()) else {
        return;
    };
    let Command::Restore(args) = command else {
        panic!("parsed as {command:?}");
    };
    assert_connection(&args.pg, &job.connection);
    assert_eq!(
        args.series.backup(&args.pg.dbname).unwrap(),
        backup_ref(&job.series)
    );
    assert_eq!(args.series.run_id().unwrap(), None, "the newest run");
    assert_eq!(args.jobs, job.jobs);
    assert_destination(args.storage.config().unwrap(), &job.destination);
}

#[test]
fn a_purge_job_parses_into_the_series_it_was_rendered_from() {
    let job = PurgeJob {
        series: series(),
        destination: directory(),
    };
    let test = "a_purge_job_parses_into_the_series_it_was_rendered_from";
    let Some(command) = parsed_in_child(test, "purge", &job.env()) else {
        return;
    };
    let Command::Purge(args) = command else {
        panic!("parsed as {command:?}");
    };
    assert_eq!(args.backup().unwrap(), backup_ref(&job.series));
    assert_destination(args.storage.config().unwrap(), &job.destination);
}

#[test]
fn a_verify_job_parses_into_the_drill_it_was_rendered_from() {
    let job = VerifyJob {
        series: series(),
        run_id: "20260102T020000Z".into(),
        destination: Destination::S3(S3Destination {
            endpoint: "https://s3.example".into(),
            bucket: "backups".into(),
            prefix: Some("team".into()),
            region: Some("eu-west-1".into()),
            force_path_style: true,
            allow_http: false,
            access_key_id: SecretKey::new("s3-creds", "accessKeyId"),
            secret_access_key: SecretKey::new("s3-creds", "secretAccessKey"),
        }),
        query: Some("SELECT count(*) > 0 FROM \"order lines\"".into()),
        work_dir: "/work".into(),
    };
    let test = "a_verify_job_parses_into_the_drill_it_was_rendered_from";
    let Some(command) = parsed_in_child(test, "verify", &job.env()) else {
        return;
    };
    let Command::Verify(args) = command else {
        panic!("parsed as {command:?}");
    };
    assert_eq!(args.backup().unwrap(), backup_ref(&job.series));
    assert_eq!(
        args.series.run_id().unwrap(),
        Some(RunId::new(&job.run_id).unwrap())
    );
    assert_eq!(args.query, job.query);
    assert_eq!(args.work_dir, std::path::PathBuf::from("/work"));
    assert_destination(args.storage.config().unwrap(), &job.destination);
}
