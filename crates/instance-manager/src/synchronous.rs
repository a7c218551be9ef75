//! Synchronous standbys: the primary keeps `synchronous_standby_names` at "any N of the other
//! instances", N being the Database's `spec.synchronousStandbys`, so a commit returns only
//! once N standbys have it on disk. A standby about to take over checks that enough of them
//! answered for it to be sure it has every acknowledged commit ([`quorum_reached`]).

use std::time::Duration;

use anyhow::Result;

use crate::postgres;
use crate::start::Instance;

/// How often the primary brings the setting in line with the Database and the instances.
const EVERY: Duration = Duration::from_secs(2);

/// The value of `synchronous_standby_names` for `n` synchronous standbys among `instances`
/// other than `me` (pure). Names are quoted: Pod names have dashes.
pub fn standby_names(n: i32, me: &str, instances: &[String]) -> String {
    let others: Vec<String> = instances
        .iter()
        .filter(|pod| *pod != me)
        .map(|pod| format!("\"{pod}\""))
        .collect();
    if n <= 0 || others.is_empty() {
        return String::new();
    }
    format!("ANY {n} ({})", others.join(", "))
}

/// Whether a standby that heard from `answered` instances (itself included) out of the
/// `standbys` the lost primary had may take over when commits needed `n` of them (pure).
///
/// An acknowledged commit is on at least `n` of the `standbys`; any `standbys - n + 1` of
/// them include one of those, and the most advanced of them has it.
pub fn quorum_reached(standbys: usize, n: i32, answered: usize) -> bool {
    let n = usize::try_from(n).unwrap_or(0);
    n == 0 || answered + n > standbys
}

/// How many synchronous standbys the Database asks for.
pub async fn wanted(instance: &Instance) -> Result<i32> {
    Ok(instance.database().await?.spec.synchronous_standbys)
}

/// As the primary: keeps `synchronous_standby_names` in line, every [`EVERY`], until aborted.
pub async fn keep_in_line(instance: Instance) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = bring_in_line(&instance).await {
            tracing::warn!(error = %format!("{e:#}"), "could not bring synchronous_standby_names in line");
        }
    }
}

async fn bring_in_line(instance: &Instance) -> Result<()> {
    let config = &instance.config;
    let n = wanted(instance).await?;
    let instances = crate::pods::instances(&instance.client, config).await?;
    let value = standby_names(n, &config.pod, &instances);
    let current = postgres::query_local(config, "SHOW synchronous_standby_names").await?;
    if current == value {
        return Ok(());
    }
    // Pod names are [a-z0-9-], so the value holds no quote that could end the literal.
    anyhow::ensure!(!value.contains('\''), "refusing {value:?}");
    postgres::query_local(
        config,
        &format!("ALTER SYSTEM SET synchronous_standby_names = '{value}'"),
    )
    .await?;
    postgres::query_local(config, "SELECT pg_reload_conf()").await?;
    tracing::info!(from = %current, to = %value, "synchronous_standby_names changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("shop-{i}")).collect()
    }

    #[test]
    fn the_primary_waits_for_any_n_of_the_other_instances() {
        assert_eq!(
            standby_names(1, "shop-1", &instances(3)),
            r#"ANY 1 ("shop-0", "shop-2")"#
        );
        assert_eq!(standby_names(0, "shop-1", &instances(3)), "");
        assert_eq!(standby_names(1, "shop-0", &instances(1)), "");
    }

    #[test]
    fn a_standby_needs_enough_answers_to_be_sure_it_has_every_acknowledged_commit() {
        // Asynchronous: whoever is most advanced among those that answered.
        assert!(quorum_reached(2, 0, 1));
        // One of two standbys had to confirm: both must be heard.
        assert!(!quorum_reached(2, 1, 1));
        assert!(quorum_reached(2, 1, 2));
        // Both had to confirm: either one has everything.
        assert!(quorum_reached(2, 2, 1));
        // One of four: four answers; two of four: three.
        assert!(!quorum_reached(4, 1, 3));
        assert!(quorum_reached(4, 2, 3));
    }
}
