//! Reading and writing the Lease: waiting to acquire it, renewing it, giving it up.
//!
//! Every write is an update carrying the `resourceVersion` that was read, so of two
//! replicas that decide at the same moment to take the Lease, the API server lets exactly
//! one through and refuses the other with a conflict. (A merge patch or server-side apply
//! would let both through.) That is also why the Role grants get, create and update only.

use std::time::Instant;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::decision::{self, Decision, Observation};
use super::{Error, Lost, Settings};

/// A process that wants the Lease.
pub struct Elector {
    api: Api<Lease>,
    settings: Settings,
    observed: Option<Observation>,
    /// The holder last logged, so waiting is logged once per holder, not every two seconds.
    logged_holder: Option<String>,
}

impl Elector {
    pub fn new(client: Client, settings: Settings) -> Elector {
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            logged_holder: None,
        }
    }

    /// Waits until this process holds the Lease. Ends early only on an error that retrying
    /// cannot fix (missing RBAC rules, a namespace that does not exist).
    pub async fn acquire(mut self) -> Result<Leadership, Error> {
        tracing::info!(
            lease = %self.settings.lease(),
            identity = %self.settings.identity,
            "waiting to become the leader"
        );
        loop {
            let started = Instant::now();
            match self.try_acquire().await {
                Ok(Some(lease)) => {
                    tracing::info!(
                        lease = %self.settings.lease(),
                        identity = %self.settings.identity,
                        transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions),
                        "became the leader"
                    );
                    return Ok(Leadership {
                        api: self.api,
                        settings: self.settings,
                        lease,
                        renewed_at: started,
                    });
                }
                Ok(None) => {}
                Err(error) if error.is_permanent() => return Err(error),
                Err(error) => tracing::warn!(%error, "cannot acquire the leader lease yet"),
            }
            tokio::time::sleep(self.settings.timing.retry_every).await;
        }
    }

    /// One look at the Lease: the Lease as written when this process now holds it.
    async fn try_acquire(&mut self) -> Result<Option<Lease>, Error> {
        let timing = self.settings.timing;
        let name = self.settings.name.clone();
        let current = self
            .api
            .get_opt(&name)
            .await
            .map_err(|e| self.settings.error("get", e))?;
        let now = Instant::now();
        let spec = current.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        self.observed = spec
            .as_ref()
            .map(|spec| Observation::update(self.observed.take(), spec, now));
        let since = self.observed.as_ref().map_or(now, Observation::since);
        let decision =
            decision::decide(spec.as_ref(), since, &self.settings.identity, now, &timing);
        let mut lease = match (decision, current) {
            (Decision::Wait { holder, remaining }, _) => {
                if self.logged_holder.as_ref() != Some(&holder) {
                    tracing::info!(%holder, ?remaining, "another replica is the leader; following");
                    self.logged_holder = Some(holder);
                }
                return Ok(None);
            }
            // Take over or renew what was read; the update fails if it changed meanwhile.
            (_, Some(lease)) => lease,
            (_, None) => Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                spec: None,
            },
        };
        let created = lease.metadata.resource_version.is_none();
        lease.spec = Some(decision::held_by(
            lease.spec.as_ref(),
            &self.settings.identity,
            Timestamp::now(),
            &timing,
        ));
        let written = if created {
            self.api.create(&PostParams::default(), &lease).await
        } else {
            self.api
                .replace(&name, &PostParams::default(), &lease)
                .await
        };
        match written {
            Ok(lease) => Ok(Some(lease)),
            // Another replica got there first; look again.
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(None)
            }
            Err(e) => Err(self
                .settings
                .error(if created { "create" } else { "update" }, e)),
        }
    }
}

/// This process holds the Lease. Renew it with [`Leadership::keep`], give it up with
/// [`Leadership::release`].
pub struct Leadership {
    api: Api<Lease>,
    settings: Settings,
    /// The Lease as last written, with the resourceVersion the next update must carry.
    lease: Lease,
    /// When the last successful renewal was sent.
    renewed_at: Instant,
}

impl Leadership {
    /// Renews the Lease until it is lost, and says why. Never returns while the Lease is
    /// held: run it next to the work, and stop the work when it returns.
    pub async fn keep(&mut self) -> Lost {
        let timing = self.settings.timing;
        let mut next = self.renewed_at + timing.renew_every;
        let mut last_error = None;
        loop {
            tokio::time::sleep_until(next.into()).await;
            let deadline = self.renewed_at + timing.renew_deadline;
            if decision::must_step_down(self.renewed_at, Instant::now(), &timing) {
                return Lost::NotRenewed { last_error };
            }
            match tokio::time::timeout_at(deadline.into(), self.renew()).await {
                Err(_) => return Lost::NotRenewed { last_error },
                Ok(Ok(())) => {
                    last_error = None;
                    next = self.renewed_at + timing.renew_every;
                }
                Ok(Err(lost @ Lost::TakenBy(_))) => return lost,
                Ok(Err(Lost::NotRenewed { last_error: error })) => {
                    if let Some(error) = &error {
                        tracing::warn!(%error, "cannot renew the leader lease; retrying");
                    }
                    last_error = error;
                    next = (Instant::now() + timing.retry_every).min(deadline);
                }
            }
        }
    }

    /// One renewal. `Lost::NotRenewed` here only means this attempt failed.
    async fn renew(&mut self) -> Result<(), Lost> {
        let sent = Instant::now();
        let mut lease = self.lease.clone();
        lease.spec = Some(decision::held_by(
            lease.spec.as_ref(),
            &self.settings.identity,
            Timestamp::now(),
            &self.settings.timing,
        ));
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.lease = written;
                self.renewed_at = sent;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                // Someone else wrote the Lease. Still ours (someone added a label)? Then the
                // next attempt carries the new resourceVersion.
                match self.api.get_opt(&self.settings.name).await {
                    Ok(Some(current)) if self.holds(&current) => {
                        self.lease = current;
                        Err(Lost::NotRenewed { last_error: None })
                    }
                    Ok(Some(current)) => Err(Lost::TakenBy(
                        current
                            .spec
                            .as_ref()
                            .and_then(decision::holder)
                            .unwrap_or("nobody (it was released)")
                            .to_owned(),
                    )),
                    Ok(None) => Err(Lost::TakenBy("nobody (the Lease was deleted)".into())),
                    Err(e) => Err(Lost::NotRenewed {
                        last_error: Some(self.settings.error("get", e).to_string()),
                    }),
                }
            }
            Err(e) => Err(Lost::NotRenewed {
                last_error: Some(self.settings.error("update", e).to_string()),
            }),
        }
    }

    /// Gives the Lease up, so that a follower takes over at its next look instead of after
    /// the Lease expires. Call it only once the work has stopped.
    pub async fn release(mut self) -> Result<(), Error> {
        for _ in 0..2 {
            let mut lease = self.lease.clone();
            let spec = lease.spec.clone().unwrap_or_default();
            lease.spec = Some(decision::released(&spec, Timestamp::now()));
            match self
                .api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    tracing::info!(lease = %self.settings.lease(), "released the leader lease");
                    return Ok(());
                }
                // A renewal cut short may have landed: read the Lease and try once more.
                Err(kube::Error::Api(status)) if status.is_conflict() => {
                    match self.api.get_opt(&self.settings.name).await {
                        Ok(Some(current)) if self.holds(&current) => self.lease = current,
                        // Not ours any more: nothing to give up.
                        Ok(_) => return Ok(()),
                        Err(e) => return Err(self.settings.error("get", e)),
                    }
                }
                Err(e) => return Err(self.settings.error("update", e)),
            }
        }
        Ok(())
    }

    /// The Lease held.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn holds(&self, lease: &Lease) -> bool {
        lease.spec.as_ref().and_then(decision::holder) == Some(self.settings.identity.as_str())
    }
}
