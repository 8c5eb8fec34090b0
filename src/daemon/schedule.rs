//! Cron triggers: a tokio-cron-scheduler job per configured schedule sends a request into the
//! model's trigger channel; the model loop decides what to do with it.

use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::ModelConfig;
use crate::control::schedule_request;
use crate::exporter::Metrics;
use crate::policy::schedule::{next_firing, CronExpr, Zone};
use crate::policy::TrainRequest;

/// Starts the jobs of every model's schedules; keep the scheduler alive while the daemon runs.
pub async fn start(
    models: &[ModelConfig],
    senders: &std::collections::HashMap<String, mpsc::Sender<TrainRequest>>,
    metrics: std::sync::Arc<Metrics>,
) -> Result<Option<JobScheduler>, tokio_cron_scheduler::JobSchedulerError> {
    if models.iter().all(|m| m.triggers.schedules.is_empty()) {
        return Ok(None);
    }
    let sched = JobScheduler::new().await?;
    for m in models {
        let zone = m.triggers.timezone;
        let all: Vec<CronExpr> = m
            .triggers
            .schedules
            .iter()
            .map(|s| s.cron.clone())
            .collect();
        for (i, s) in m.triggers.schedules.iter().enumerate() {
            let all = all.clone();
            let tx = senders[&m.name].clone();
            let model = m.name.clone();
            // The decision core words the request; the loop hands it to the core.
            let Some(req) = schedule_request(m, i) else {
                continue;
            };
            let metrics = metrics.clone();
            let job = Job::new_async_tz(s.cron.as_str(), zone.tz(), move |_id, _lock| {
                let (tx, model, metrics, all, req) = (
                    tx.clone(),
                    model.clone(),
                    metrics.clone(),
                    all.clone(),
                    req.clone(),
                );
                Box::pin(async move {
                    // A full channel means a request is already waiting: this one coalesces.
                    let _ = tx.try_send(req);
                    publish_next(&metrics, &model, &all, zone);
                })
            })?;
            sched.add(job).await?;
        }
        publish_next(&metrics, &m.name, &all, zone);
    }
    sched.start().await?;
    Ok(Some(sched))
}

fn publish_next(metrics: &Metrics, model: &str, crons: &[CronExpr], zone: Zone) {
    let now = chrono::Utc::now();
    let next = crons.iter().filter_map(|c| next_firing(c, zone, now)).min();
    if let Some(t) = next {
        metrics
            .next_scheduled_retrain
            .with_label_values(&[model])
            .set(t.timestamp() as f64);
    }
}
