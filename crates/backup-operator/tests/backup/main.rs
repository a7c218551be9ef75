//! Scenarios against real servers: a private PostgreSQL per test and an
//! in-process S3 server. Each scenario that concerns storage runs against
//! both destinations.

mod command_line;
mod corruption;
mod interrupted;
mod retention;
mod round_trip;
mod store_outage;
mod support;
mod unreachable;
mod verification;
