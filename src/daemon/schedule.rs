//! Cron triggers: a tokio-cron-scheduler job per configured schedule sends a request into the
//! model's trigger channel; the model loop decides what to do with it.

use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::ModelConfig;
use crate::exporter::Metrics;
use crate::policy::schedule::{next_firings, parse_timezone};
use crate::policy::{TrainRequest, TriggerKind};

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
        let tz = parse_timezone(&m.triggers.timezone).expect("validated with the config");
        let all: Vec<String> = m
            .triggers
            .schedules
            .iter()
            .map(|s| s.cron.clone())
            .collect();
        for s in &m.triggers.schedules {
            let all = all.clone();
            let tx = senders[&m.name].clone();
            let (model, cron, strategy, tzname) = (
                m.name.clone(),
                s.cron.clone(),
                s.strategy,
                m.triggers.timezone.clone(),
            );
            let metrics = metrics.clone();
            let job = Job::new_async_tz(s.cron.as_str(), tz, move |_id, _lock| {
                let (tx, model, cron, tzname, metrics, all) = (
                    tx.clone(),
                    model.clone(),
                    cron.clone(),
                    tzname.clone(),
                    metrics.clone(),
                    all.clone(),
                );
                Box::pin(async move {
                    let req = TrainRequest {
                        trigger: TriggerKind::Schedule,
                        reason: format!("schedule `{cron}` ({tzname})"),
                        strategy,
                        run_id: None,
                        new_after: None,
                    };
                    // A full channel means a request is already waiting: this one coalesces.
                    let _ = tx.try_send(req);
                    let all: Vec<&str> = all.iter().map(String::as_str).collect();
                    publish_next(&metrics, &model, &all, &tzname);
                })
            })?;
            sched.add(job).await?;
        }
        let crons: Vec<&str> = m
            .triggers
            .schedules
            .iter()
            .map(|s| s.cron.as_str())
            .collect();
        publish_next(&metrics, &m.name, &crons, &m.triggers.timezone);
    }
    sched.start().await?;
    Ok(Some(sched))
}

fn publish_next(metrics: &Metrics, model: &str, crons: &[&str], tz: &str) {
    let now = chrono::Utc::now();
    let next = crons
        .iter()
        .filter_map(|c| {
            next_firings(c, tz, now, 1)
                .ok()
                .and_then(|v| v.first().copied())
        })
        .min();
    if let Some(t) = next {
        metrics
            .next_scheduled_retrain
            .with_label_values(&[model])
            .set(t.timestamp() as f64);
    }
}
