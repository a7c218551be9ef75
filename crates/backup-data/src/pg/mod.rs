//! Running the PostgreSQL client programs (`psql`, `pg_dump`, `pg_restore`)
//! against one server, with credentials passed the way libpq reads them.

mod connection;
mod process;
mod stderr_tail;

pub use connection::PgConnection;
pub use process::{PgError, PgTools, RunningTool};
