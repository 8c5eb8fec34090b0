//! Cron triggers: each configured schedule sends a request into the model's trigger channel;
//! the model loop decides what to do with it.
//!
//! The firing times come from [`Plan`] (croner, in the model's time zone, recomputed after
//! every firing), and tokio-cron-scheduler runs one one-shot job per schedule at the planned
//! instant; each job arms the next one when it fires. The crate's own time-zone cron jobs are
//! not used: they keep the UTC offset of the day they were created, so after a daylight-saving
//! change they fire an hour off until restart (see `policy::schedule`'s tests). The metric
//! `driftd_next_scheduled_retrain_timestamp_seconds` is [`Plan::next`], the same computation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::ModelConfig;
use crate::control::schedule_request;
use crate::exporter::Metrics;
use crate::policy::schedule::Plan;
use crate::policy::TrainRequest;

/// One model's schedules and where their requests go.
struct ModelSchedules {
    model: String,
    cfg: ModelConfig,
    plan: Mutex<Plan>,
    tx: mpsc::Sender<TrainRequest>,
    /// The model loop waits for work; a firing wakes it at once.
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl ModelSchedules {
    /// Schedule `i` is due: request an update, plan its next firing, publish the earliest.
    fn fire(&self, i: usize) -> Option<DateTime<Utc>> {
        if let Some(req) = schedule_request(&self.cfg, i) {
            // A full channel means a request is already waiting: this one coalesces into it,
            // and is counted as such (`driftd_retrains_total{result="coalesced"}`).
            if let Err(mpsc::error::TrySendError::Full(req)) = self.tx.try_send(req) {
                self.metrics.training.coalesced(&self.model, req.trigger);
                tracing::info!(model = %self.model, schedule = i, "a schedule fired while its last request waits; coalesced");
            }
            self.wake.notify_one();
        }
        let mut plan = self.plan.lock().expect("schedule plan lock");
        let next = plan.fired(i, Utc::now());
        self.publish(&plan);
        next
    }

    fn publish(&self, plan: &Plan) {
        if let Some(t) = plan.next() {
            self.metrics.schedules.set_next(&self.model, t);
        }
    }
}

/// When to run a one-shot job so that it fires at `at` or within about a second after, never
/// before: the crate rounds the delay down to whole seconds.
fn instant_for(at: DateTime<Utc>, now: DateTime<Utc>) -> Instant {
    let ms = (at - now).num_milliseconds().max(0) as u64;
    Instant::now() + Duration::from_secs(ms.div_ceil(1000) + 1)
}

type Armed = Pin<Box<dyn Future<Output = Result<(), JobSchedulerError>> + Send>>;

/// Adds the one-shot job for schedule `i`'s next firing (none if it never fires again).
fn arm(sched: JobScheduler, ms: Arc<ModelSchedules>, i: usize) -> Armed {
    Box::pin(async move {
        let Some(at) = ms.plan.lock().expect("schedule plan lock").next_of(i) else {
            return Ok(());
        };
        let job = Job::new_one_shot_at_instant_async(
            instant_for(at, Utc::now()),
            move |id, sched| {
                let ms = ms.clone();
                Box::pin(async move {
                    ms.fire(i);
                    if let Err(e) = arm(sched.clone(), ms.clone(), i).await {
                        tracing::error!(model = %ms.model, error = %e, "cannot arm the next scheduled retrain");
                    }
                    // A one-shot job that ran stays in the crate's store: remove it once the
                    // crate has recorded its run, so jobs do not pile up.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        let _ = sched.remove(&id).await;
                    });
                })
            },
        )?;
        sched.add(job).await.map(|_| ())
    })
}

/// The replica's schedules: a scheduler started with the first model that has any, so a
/// replica without schedules runs none; models found at run time add theirs.
pub struct Schedules {
    scheduler: tokio::sync::Mutex<Option<JobScheduler>>,
    metrics: Arc<Metrics>,
}

impl Schedules {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Schedules {
            scheduler: tokio::sync::Mutex::new(None),
            metrics,
        }
    }

    /// Arms `m`'s schedules (none: nothing happens); their requests go to `tx`, and a firing
    /// wakes the loop through `wake`.
    pub async fn add(
        &self,
        m: &ModelConfig,
        tx: mpsc::Sender<TrainRequest>,
        wake: Arc<Notify>,
    ) -> Result<(), JobSchedulerError> {
        if m.triggers.schedules.is_empty() {
            return Ok(());
        }
        let mut slot = self.scheduler.lock().await;
        if slot.is_none() {
            let sched = JobScheduler::new().await?;
            sched.start().await?;
            *slot = Some(sched);
        }
        let sched = slot.as_ref().expect("created above").clone();
        let crons: Vec<_> = m
            .triggers
            .schedules
            .iter()
            .map(|s| s.cron.clone())
            .collect();
        let plan = Plan::new(&crons, m.triggers.timezone, Utc::now());
        let ms = Arc::new(ModelSchedules {
            model: m.name.clone(),
            cfg: m.clone(),
            plan: Mutex::new(plan),
            tx,
            wake,
            metrics: self.metrics.clone(),
        });
        ms.publish(&ms.plan.lock().expect("schedule plan lock"));
        for i in 0..ms.cfg.triggers.schedules.len() {
            arm(sched.clone(), ms.clone(), i).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_firing_while_the_last_request_waits_is_counted_as_coalesced() {
        let cfg = crate::config::Config::from_toml_str(
            "[database]\nurl = \"postgres://x@localhost/y\"\n[[models]]\nname = \"m\"\n\
             n_features = 2\n[[models.triggers.schedules]]\ncron = \"0 0 3 * * *\"\n",
            Vec::new(),
        )
        .unwrap();
        let m = cfg.models[0].clone();
        let (tx, mut rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let crons = vec![m.triggers.schedules[0].cron.clone()];
        let ms = ModelSchedules {
            model: m.name.clone(),
            plan: Mutex::new(Plan::new(&crons, m.triggers.timezone, Utc::now())),
            cfg: m,
            tx,
            wake: Arc::new(Notify::new()),
            metrics: metrics.clone(),
        };
        let coalesced = || {
            metrics
                .render()
                .lines()
                .find(|l| {
                    l.starts_with("driftd_retrains_total{")
                        && l.contains(r#"result="coalesced""#)
                        && l.contains(r#"trigger="schedule""#)
                })
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        ms.fire(0);
        assert_eq!(coalesced(), None);
        ms.fire(0);
        assert_eq!(coalesced().as_deref(), Some("1"));
        assert!(rx.try_recv().is_ok(), "the first request waits");
        assert!(rx.try_recv().is_err(), "and only it");
    }

    #[test]
    fn a_one_shot_is_never_armed_before_its_time() {
        let now = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 58).unwrap();
        let before = Instant::now();
        let at = now + chrono::Duration::milliseconds(1_300);
        let i = instant_for(at, now);
        // 1.3 s rounds up to 2 s, plus a second of margin for the crate's rounding down.
        assert!(i >= before + Duration::from_secs(3));
        assert!(
            instant_for(now - chrono::Duration::seconds(5), now) >= before + Duration::from_secs(1)
        );
    }
}
