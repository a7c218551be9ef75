//! The `backup-operator` binary as a Job runs it, against a private PostgreSQL and an
//! in-process S3 server: settings from the environment, one JSON line on stdout and in the
//! termination log, and the exit status. The data path itself is tested in `backup-data`.

mod command_line;
mod killed;
mod physical;
mod run;
mod s3_verify;
mod settings;
mod store_outage;
mod verify;
