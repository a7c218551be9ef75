//! Running the PostgreSQL client programs (`psql`, `pg_dump`, `pg_restore`)
//! against one server, with credentials passed the way libpq reads them.

pub mod args;
mod connection;
mod process;
mod stderr_tail;
mod version;

pub use args::DumpOutput;
pub use connection::PgConnection;
pub use process::{PgError, PgTools, RunningTool};
pub use version::{PgVersion, UnreadableVersion};
