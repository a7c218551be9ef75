//! `kubectl pg status`: gather (API) → view (pure) → render (pure).

mod gather;
mod render;
mod view;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use crate::cli::{Output, Target};
use crate::failure::Failure;

pub use gather::{Objects, gather_all, gather_one};
use view::DatabaseView;

pub async fn run(
    target: &Target,
    database: Option<String>,
    output: Output,
) -> Result<ExitCode, Failure> {
    let now = chrono::Utc::now();
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = match database {
        Some(name) => {
            let objects = gather_one(target, &name).await?;
            let view = view::database(&objects, now);
            match output {
                Output::Json => json(&view)?,
                Output::Text => render::database(&view, now, colour),
            }
        }
        None => {
            let all = gather_all(target).await?;
            let views: Vec<DatabaseView> = all.iter().map(|o| view::database(o, now)).collect();
            match output {
                Output::Json => json(&views)?,
                Output::Text if views.is_empty() => {
                    format!("No Databases in namespace {}.\n", target.namespace)
                }
                Output::Text => render::table(&views, now, colour),
            }
        }
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The text screen of one Database, without colour (for the report).
pub fn screen(objects: &Objects, now: chrono::DateTime<chrono::Utc>) -> String {
    render::database(&view::database(objects, now), now, false)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| Failure::new(format!("cannot write JSON: {e}")))
}
