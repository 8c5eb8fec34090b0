use std::path::PathBuf;

use super::*;
use crate::generate::StreamSpec;

/// A one-model config with quick training; `model_keys` go in the `[[models]]` table,
/// `tables` after it (sub-tables of that model).
fn config(n_features: usize, model_keys: &str, tables: &str) -> Config {
    let text = format!(
        r#"
[database]
url = "postgres://x@localhost/y"
[[models]]
name = "m"
n_features = {n_features}
{model_keys}
[models.train]
fit_epochs = 30
num_threads = 1
finetune_epochs = 15
[models.triggers]
bootstrap_min_rows = 500
{tables}
"#
    );
    Config::from_toml_str(&text, Vec::new()).unwrap()
}

/// The synthetic streams' configuration: training on the newest 1 000 rows, a drift update
/// once 500 rows of the new concept are in.
fn stream_config() -> Config {
    config(
        8,
        "max_training_rows = 1000",
        "[models.triggers.drift]\nmin_new_rows = 300\nmin_rows_after_drift = 500\ncooldown = \"5m\"",
    )
}

fn elec2() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/elec2.csv"))
}

fn drifting() -> StreamSpec {
    StreamSpec {
        n_features: 8,
        rows: 12_000,
        abrupt_at: Some(4_000),
        gradual: Some((8_000, 9_000)),
        label_noise: 0.05,
        seed: 11,
        categorical: 0,
    }
}

/// Strips every `*seconds` key: what may differ between two identical replays.
fn without_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("seconds"));
            m.values_mut().for_each(without_timings);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_timings),
        _ => {}
    }
}

/// Where each update happened and which trigger made it.
fn retrain_points(r: &Report) -> Vec<(usize, &str)> {
    r.retrains
        .iter()
        .map(|u| (u.index, u.trigger.as_str()))
        .collect()
}

fn drifts_in(r: &Report, from: usize, to: usize) -> Vec<usize> {
    r.drifts
        .iter()
        .copied()
        .filter(|&d| d >= from && d <= to)
        .collect()
}

#[test]
fn drift_is_found_after_each_change_and_the_policy_beats_never_updating() {
    let cfg = stream_config();
    let h = History::from_stream(&drifting());
    let c = compare_history(&cfg.models[0], &h, &BacktestOptions::default()).unwrap();
    eprintln!("{}", c.to_markdown());
    let p = &c.policy;
    eprintln!("drifts {:?}", p.drifts);
    assert_eq!(p.rows, 12_000 - 500);
    assert!(
        drifts_in(p, 0, 3_999).is_empty(),
        "no drift before the first change: {:?}",
        p.drifts
    );
    // Abrupt change at 4 000: found within 500 rows; gradual over 8 000–9 000: found before
    // it is over (ADWIN on the error stream).
    assert!(
        !drifts_in(p, 4_000, 4_500).is_empty(),
        "abrupt change missed: {:?}",
        p.drifts
    );
    assert!(
        !drifts_in(p, 8_000, 9_000).is_empty(),
        "gradual change missed: {:?}",
        p.drifts
    );
    // Each change is followed by a promoted drift update.
    for (from, to) in [(4_000, 5_000), (8_000, 9_500)] {
        assert!(
            p.retrains
                .iter()
                .any(|r| r.trigger == "drift" && r.promoted && r.index > from && r.index <= to),
            "no promoted update after the change at {from}: {:?}",
            p.retrains
        );
    }
    assert_eq!(c.never.retrains.len(), 0);
    // The report's metrics are computed on the same rows as its accuracy; κ follows it.
    assert!((p.metrics.accuracy - p.prequential_accuracy).abs() < 1e-12);
    assert!(
        p.metrics.kappa > c.never.metrics.kappa + 0.1,
        "{:?}",
        p.metrics
    );
    assert_eq!(
        p.metrics.no_change_accuracy,
        c.never.metrics.no_change_accuracy
    );
    assert_eq!(p.update_cost.updates, p.retrains.len());
    assert!(p.update_cost.mean_seconds > 0.0 && p.update_cost.mean_steps > 0.0);
    assert!(
        p.prequential_accuracy > c.never.prequential_accuracy + 0.1,
        "{}",
        c.to_markdown()
    );
    assert_eq!(c.periodic.retrains.len(), p.retrains.len().max(1));
    // The series covers every evaluated row in 500-row steps.
    assert_eq!(p.accuracy_series.len(), 23);
    assert_eq!(p.accuracy_series.last().unwrap().index, 11_999);
    // Before the change the bootstrap model is good, right after it it is not.
    let at = |i: usize| {
        p.accuracy_series
            .iter()
            .find(|s| s.index == i)
            .unwrap()
            .accuracy
    };
    assert!(
        at(3_999) > 0.8 && at(4_499) < 0.75,
        "{:?}",
        p.accuracy_series
    );
}

#[test]
fn a_stationary_stream_shows_no_drift_and_no_update() {
    let cfg = stream_config();
    let spec = StreamSpec {
        abrupt_at: None,
        gradual: None,
        ..drifting()
    };
    let r = run_history(
        &cfg.models[0],
        &History::from_stream(&spec),
        &BacktestOptions::default(),
    )
    .unwrap();
    assert!(r.drifts.is_empty(), "{:?}", r.drifts);
    assert!(r.retrains.is_empty(), "{:?}", r.retrains);
    assert!(r.prequential_accuracy > 0.8, "{}", r.prequential_accuracy);

    // The "more data" trigger tries an update every 3 000 labelled rows through the same
    // policy path as the daemon; the holdout gate decides on each.
    let cfg = config(
        8,
        "max_training_rows = 1000",
        "[models.triggers.more_data]\nenabled = true\nevery_rows = 3000",
    );
    let r = run_history(
        &cfg.models[0],
        &History::from_stream(&spec),
        &BacktestOptions::default(),
    )
    .unwrap();
    let at = retrain_points(&r);
    assert_eq!(
        at,
        [
            (3_499, "more_data"),
            (6_499, "more_data"),
            (9_499, "more_data")
        ]
    );
    assert!(r.retrains.iter().all(|u| u.steps > 0 && u.error.is_none()));
}

#[test]
fn label_times_of_its_own_replay_what_a_fixed_delay_does_and_more() {
    let cfg = stream_config();
    let plain = History::from_stream(&drifting());
    let n = plain.len();
    let json = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        without_timings(&mut v);
        for k in ["label_delay", "label_delay_rows", "metrics"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let delayed = |d: usize| BacktestOptions {
        label_delay_rows: d,
        ..Default::default()
    };
    // A label time 300 rows (seconds) after each prediction is the fixed delay of 300 rows.
    let mut h = plain.clone();
    h.label_ts = Some(
        (0..n)
            .map(|j| plain.rows.ts[(j + 300).min(n - 1)])
            .collect(),
    );
    let own = run_history(&cfg.models[0], &h, &BacktestOptions::default()).unwrap();
    assert_eq!(own.label_delay, "timestamps");
    assert_eq!(
        json(&own),
        json(&run_history(&cfg.models[0], &plain, &delayed(300)).unwrap())
    );
    // Out of order: every other row's label waits 600 rows, the rest come at once. An update
    // then trains on rows whose labels are in, which is no prefix of the history.
    h.label_ts = Some(
        (0..n)
            .map(|j| plain.rows.ts[if j % 2 == 0 { j } else { (j + 600).min(n - 1) }])
            .collect(),
    );
    let mixed = run_history(&cfg.models[0], &h, &BacktestOptions::default()).unwrap();
    assert!(!mixed.retrains.is_empty());
    for r in &mixed.retrains {
        let (_, last_new) = r.rows.new.expect("new rows");
        // The newest label in is an even row predicted by the time of the update, or an odd
        // one 600 rows before it.
        assert!(last_new as usize <= r.index, "{r:?}");
    }
    assert_ne!(json(&mixed), json(&own));
}

#[test]
fn deterministic_for_a_seed_with_label_delay() {
    let cfg = stream_config();
    let h = History::from_stream(&drifting());
    let opts = BacktestOptions {
        label_delay_rows: 300,
        seed: 5,
        ..Default::default()
    };
    let a = run_history(&cfg.models[0], &h, &opts).unwrap();
    let b = run_history(&cfg.models[0], &h, &opts).unwrap();
    let json = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        without_timings(&mut v);
        v
    };
    assert_eq!(json(&a), json(&b));
    assert!(!a.retrains.is_empty());
    // Labels arrive 300 rows late: an update only trains on rows labelled by then.
    for r in &a.retrains {
        assert!(r.trained_upto + 300 <= r.index, "{r:?}");
    }
    // And the delay costs accuracy against instant labels.
    let instant = run_history(
        &cfg.models[0],
        &h,
        &BacktestOptions {
            seed: 5,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        instant.prequential_accuracy > a.prequential_accuracy,
        "{} vs {}",
        instant.prequential_accuracy,
        a.prequential_accuracy
    );
}

#[test]
fn generated_csv_replays_like_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.csv");
    let spec = StreamSpec {
        rows: 3_000,
        abrupt_at: Some(1_500),
        gradual: None,
        ..drifting()
    };
    assert_eq!(generate_csv(&spec, &path).unwrap(), 3_000);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("f0,f1,f2,f3,f4,f5,f6,f7,label,ts\n"));
    let cfg = stream_config();
    let opts = BacktestOptions::default();
    let from_csv = run(&cfg, "m", &path, &opts).unwrap();
    let direct = run_history(&cfg.models[0], &History::from_stream(&spec), &opts).unwrap();
    let json = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        without_timings(&mut v);
        v
    };
    assert_eq!(json(&from_csv), json(&direct));
    assert_eq!(from_csv.feature_names[0], "f0");
}

#[test]
fn generated_parquet_replays_like_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StreamSpec {
        rows: 3_000,
        abrupt_at: Some(1_500),
        gradual: None,
        ..drifting()
    };
    let csv = dir.path().join("stream.csv");
    let parquet = dir.path().join("stream.parquet");
    // A Parquet file is recognised by its content too, whatever its name.
    let renamed = dir.path().join("stream.data");
    assert_eq!(generate_file(&spec, &csv).unwrap(), 3_000);
    assert_eq!(generate_file(&spec, &parquet).unwrap(), 3_000);
    std::fs::copy(&parquet, &renamed).unwrap();
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    assert_eq!(InputFormat::detect(&renamed).unwrap(), InputFormat::Parquet);
    assert_eq!(InputFormat::detect(&csv).unwrap(), InputFormat::Csv);

    let cfg = stream_config();
    let opts = BacktestOptions::default();
    let from_csv = read_history(&cfg.models[0], &csv, &opts).unwrap();
    let from_parquet = read_history(&cfg.models[0], &parquet, &opts).unwrap();
    assert_eq!(from_parquet, from_csv);
    assert_eq!(
        read_history(&cfg.models[0], &renamed, &opts).unwrap(),
        from_csv
    );
    let first = BacktestOptions {
        max_rows: Some(700),
        ..Default::default()
    };
    let head = read_history(&cfg.models[0], &parquet, &first).unwrap();
    assert_eq!(head.len(), 700);
    assert_eq!(head.rows.y[..], from_csv.rows.y[..700]);

    let json = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        without_timings(&mut v);
        v
    };
    assert_eq!(
        json(&run(&cfg, "m", &parquet, &opts).unwrap()),
        json(&run(&cfg, "m", &csv, &opts).unwrap())
    );
}

#[test]
fn parquet_datetime_and_date_columns_are_timestamps() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.parquet");
    // Out of time order, one null feature, a label that is not a class index.
    let n = 300usize;
    let micros: Vec<i64> = (0..n)
        .rev()
        .map(|i| (1_700_000_000 + 60 * i as i64) * 1_000_000 + 250_000)
        .collect();
    let a: Vec<Option<f64>> = (0..n)
        .map(|i| (i != 5).then_some((i as f64 * 0.37).sin()))
        .collect();
    let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
    let y: Vec<i32> = (0..n)
        .map(|i| if i == 9 { -1 } else { (i % 2) as i32 })
        .collect();
    let when = Column::new("when".into(), micros)
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap();
    let days = Column::new("day".into(), vec![19_700i32; n])
        .cast(&DataType::Date)
        .unwrap();
    let mut df = DataFrame::new(
        n,
        vec![
            when,
            days,
            Column::new("a".into(), a),
            Column::new("b".into(), b),
            Column::new("y".into(), y),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();

    let cfg = config(2, "feature_names = [\"a\", \"b\"]", "");
    let opts = BacktestOptions {
        label_column: "y".into(),
        timestamp_column: Some("when".into()),
        ..Default::default()
    };
    let h = read_history(&cfg.models[0], &path, &opts).unwrap();
    assert_eq!((h.len(), h.skipped_rows), (298, 2));
    let reasons: Vec<(&str, usize)> = h
        .skipped_by_reason
        .iter()
        .map(|(r, n)| (r.as_str(), *n))
        .collect();
    assert_eq!(reasons, [("invalid_label", 1), ("null_feature", 1)]);
    assert!(h.rows.ts.windows(2).all(|w| w[0] < w[1]), "sorted by time");
    // Sub-second parts are dropped, as for unix seconds in a CSV.
    assert_eq!(h.rows.ts[0], 1_700_000_000);
    assert_eq!(
        *h.rows.ts.last().unwrap(),
        1_700_000_000 + 60 * (n as i64 - 1)
    );
    // The rows follow their timestamps: the newest row came first in the file.
    assert_eq!(h.row(h.len() - 1), &[0.0, 1.0]);

    let by_day = BacktestOptions {
        timestamp_column: Some("day".into()),
        ..opts.clone()
    };
    let h = read_history(&cfg.models[0], &path, &by_day).unwrap();
    assert!(h.rows.ts.iter().all(|&t| t == 19_700 * 86_400));

    // Not Parquet after all: a clear error, not a panic.
    let broken = dir.path().join("broken.parquet");
    std::fs::write(&broken, b"PAR1 this is not a parquet file").unwrap();
    let err = read_history(&cfg.models[0], &broken, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken.parquet"), "{err}");
}

#[test]
fn columns_timestamps_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.csv");
    // Out of time order, date-time strings, an id column to leave out, one null feature.
    let mut text = String::from("id,when,a,b,y\n");
    let mut stream = crate::generate::Stream::new(StreamSpec {
        n_features: 2,
        rows: 400,
        abrupt_at: None,
        gradual: None,
        ..Default::default()
    });
    for i in (0..400).rev() {
        let r = stream.next().unwrap();
        let when = chrono::DateTime::from_timestamp(1_700_000_000 + 60 * i, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S");
        let a = if i == 7 {
            String::new()
        } else {
            r.features[0].to_string()
        };
        text.push_str(&format!("{i},{when},{a},{},{}\n", r.features[1], r.label));
    }
    std::fs::write(&path, text).unwrap();
    let mut cfg = config(2, "feature_names = [\"a\", \"b\"]", "");
    let opts = BacktestOptions {
        label_column: "y".into(),
        timestamp_column: Some("when".into()),
        bootstrap_rows: Some(100),
        series_every: 100,
        ..Default::default()
    };
    let h = read_history(&cfg.models[0], &path, &opts).unwrap();
    assert_eq!((h.len(), h.skipped_rows), (399, 1));
    assert!(h.has_timestamps);
    assert!(h.rows.ts.windows(2).all(|w| w[0] < w[1]), "sorted by time");
    assert_eq!(h.rows.ts[0], 1_700_000_000);
    let r = run(&cfg, "m", &path, &opts).unwrap();
    assert_eq!((r.rows, r.skipped_rows), (299, 1));

    // Without feature_names every numeric column but the label and timestamp is a feature:
    // here `id` too, one too many for the model.
    cfg.models[0].feature_names.clear();
    let err = run(&cfg, "m", &path, &opts).unwrap_err().to_string();
    assert!(
        err.contains("n_features = 2") && err.contains("id, a, b"),
        "{err}"
    );
    let err = run(
        &cfg,
        "m",
        &path,
        &BacktestOptions {
            label_column: "label".into(),
            ..opts.clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no label column `label`"), "{err}");
    let err = run(&cfg, "m", &dir.path().join("missing.parquet"), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.parquet"), "{err}");
    let err = run(&cfg, "nope", &path, &opts).unwrap_err().to_string();
    assert!(err.contains("no model named `nope`"), "{err}");
    assert_eq!(parse_timestamp("2024-01-01T00:00:00Z"), Some(1_704_067_200));
    assert_eq!(parse_timestamp("2024-01-01"), Some(1_704_067_200));
    assert_eq!(parse_timestamp("1704067200.9"), Some(1_704_067_200));
    assert_eq!(parse_timestamp("yesterday"), None);
}

#[test]
fn schedules_and_feature_drift_run_on_the_simulated_clock() {
    // Hourly schedule, drift trigger off: rows are a second apart from 2024-01-01 00:00:00,
    // so it fires in the batches holding rows 3 600, 7 200 and 10 800.
    let cfg = config(
        8,
        "max_training_rows = 1000",
        "schedules = [{ cron = \"0 0 * * * *\", strategy = \"refit_new\" }]\n\
         [models.triggers.drift]\nenabled = false",
    );
    let h = History::from_stream(&drifting());
    let r = run_history(&cfg.models[0], &h, &BacktestOptions::default()).unwrap();
    let at = retrain_points(&r);
    assert_eq!(
        at,
        vec![
            (3_699, "schedule"),
            (7_299, "schedule"),
            (10_899, "schedule")
        ]
    );
    assert!(r.retrains.iter().all(|u| u.strategy == Strategy::RefitNew));

    // Feature drift: every input moves by +3 from row 3 000; checked every minute (60 rows)
    // against the champion's training rows. (The Jensen–Shannon test is off: on 300-row
    // windows its sampling noise alone is about the default threshold of 0.1.)
    let cfg = config(
        8,
        "max_training_rows = 1000",
        "[models.triggers.drift]\nenabled = false\n\
         [models.feature_drift]\ncheck_interval = \"1m\"\nwindow_rows = 300\n\
         js_threshold = 1.0\ndrifted_ratio_trigger = 0.5",
    );
    let mut h = History::from_stream(&StreamSpec {
        abrupt_at: None,
        gradual: None,
        rows: 6_000,
        ..drifting()
    });
    for v in &mut h.rows.x[3_000 * 8..] {
        *v += 3.0;
    }
    let r = run_history(&cfg.models[0], &h, &BacktestOptions::default()).unwrap();
    let first = r.retrains.first().expect("a feature-drift update");
    assert_eq!(first.trigger, "feature_drift");
    assert!(
        first.index > 3_000 && first.index < 3_400,
        "{:?}",
        r.retrains
    );
    assert!(first.reason.contains("f0"), "{}", first.reason);
}

#[test]
fn the_chart_shows_the_story() {
    let cfg = stream_config();
    let spec = StreamSpec {
        rows: 6_000,
        abrupt_at: Some(3_000),
        gradual: None,
        ..drifting()
    };
    let c = compare_history(
        &cfg.models[0],
        &History::from_stream(&spec),
        &BacktestOptions::default(),
    )
    .unwrap();
    let svg = render_svg(&c.policy, &[&c.never, &c.periodic]);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Three policies' accuracy, and the policy's estimate before the labels.
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert!(c.policy.estimated_accuracy_mae.is_some());
    assert!(svg.contains("estimated before the labels (MAE"));
    // One tooltip per drift and per update.
    assert_eq!(
        svg.matches("<title>").count(),
        c.policy.drift_events.len() + c.policy.retrains.len()
    );
    assert!(!c.policy.drift_events.is_empty() && !c.policy.retrains.is_empty());
    for legend in ["policy (", "never (", "update, promoted", "drift"] {
        assert!(svg.contains(legend), "{legend}");
    }
    let dir = tempfile::tempdir().unwrap();
    write_comparison_svg(&c, &dir.path().join("c.svg")).unwrap();
    write_svg(&c.policy, &dir.path().join("p.svg")).unwrap();
    assert!(std::fs::read_to_string(dir.path().join("p.svg"))
        .unwrap()
        .contains("<polyline"));
    // Balanced elements (a cheap well-formedness check).
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
}

#[test]
fn elec2_policy_is_at_least_as_accurate_as_never_updating() {
    // The first 10 000 half-hours; labels `class`; no timestamp column, so the clock runs
    // 1 800 s a row.
    let cfg = config(6, "max_training_rows = 2000", "");
    let opts = BacktestOptions {
        label_column: "class".into(),
        max_rows: Some(10_000),
        seconds_per_row: 1_800,
        ..Default::default()
    };
    let c = compare(&cfg, "m", &elec2(), &opts).unwrap();
    eprintln!("elec2, first 10 000 rows:\n{}", c.to_markdown());
    assert_eq!(c.policy.rows, 9_500);
    assert_eq!(
        c.policy.feature_names,
        [
            "period",
            "nswprice",
            "nswdemand",
            "vicprice",
            "vicdemand",
            "transfer"
        ]
    );
    assert!(!c.policy.drifts.is_empty());
    assert!(
        c.policy.prequential_accuracy >= c.never.prequential_accuracy,
        "{}",
        c.to_markdown()
    );
}

#[test]
fn the_command_writes_report_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.csv");
    let spec = generate_spec(3_000, 8, 4);
    assert_eq!(
        (spec.abrupt_at, spec.gradual),
        (Some(1_200), Some((2_100, 2_550)))
    );
    generate_csv(&spec, &input).unwrap();
    let cfg = stream_config();
    let mut cmd = BacktestCommand {
        input: input.clone(),
        report: Some(dir.path().join("r.json")),
        chart: Some(dir.path().join("c.svg")),
        ..Default::default()
    };
    let done = execute(&cfg, &cmd).unwrap();
    let out = &done.text;
    assert!(
        out.contains("prequential accuracy") && out.contains("chart written"),
        "{out}"
    );
    let r: Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r.rows, 2_500);
    assert_eq!(done.prequential_accuracy, r.prequential_accuracy);
    cmd.compare = true;
    let out = execute(&cfg, &cmd).unwrap().text;
    assert!(out.contains("| never |"), "{out}");
    let c: Comparison =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(c.table.len(), 3);
    cmd.model = Some("other".into());
    assert!(matches!(execute(&cfg, &cmd), Err(BacktestError::Config(_))));
}

/// Not a check: the replay's speed on 100 000 rows × 20 features with a few updates.
/// `cargo test --lib backtest::tests::speed -- --ignored --nocapture`
#[test]
#[ignore]
fn speed_100k_rows_20_features() {
    let cfg = config(
        20,
        "max_training_rows = 5000",
        "[models.triggers.drift]\nmin_new_rows = 1000\nmin_rows_after_drift = 1000\ncooldown = \"30m\"\n\
         [models.triggers.threshold]\nenabled = true\nmin_accuracy = 0.8\nhold = \"5m\"\ncooldown = \"30m\"",
    );
    let mut m = cfg.models[0].clone();
    // The default training settings, one libtorch thread.
    m.train = crate::train::TrainConfig {
        num_threads: Some(1),
        ..Default::default()
    };
    let spec = StreamSpec {
        n_features: 20,
        rows: 100_000,
        abrupt_at: Some(30_000),
        gradual: Some((60_000, 70_000)),
        label_noise: 0.05,
        seed: 3,
        categorical: 0,
    };
    let t = std::time::Instant::now();
    let h = History::from_stream(&spec);
    let gen = t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.csv");
    generate_csv(&spec, &path).unwrap();
    let t = std::time::Instant::now();
    let read = read_history(&m, &path, &BacktestOptions::default()).unwrap();
    let read_s = t.elapsed().as_secs_f64();
    assert_eq!(read.len(), h.len());
    let parquet = dir.path().join("s.parquet");
    generate_parquet(&spec, &parquet).unwrap();
    let t = std::time::Instant::now();
    let read = read_history(&m, &parquet, &BacktestOptions::default()).unwrap();
    let read_parquet_s = t.elapsed().as_secs_f64();
    assert_eq!(read.len(), h.len());
    let r = run_history(&m, &h, &BacktestOptions::default()).unwrap();
    eprintln!(
        "100k x 20: generate {gen:.2} s, read CSV {read_s:.2} s, Parquet {read_parquet_s:.2} s; replay {:.2} s = training {:.2} s \
         ({} updates + bootstrap) + predict {:.2} s + monitor/policy {:.2} s; accuracy {:.4}",
        r.wall_seconds,
        r.training_seconds,
        r.retrains.len(),
        r.predict_seconds,
        r.monitor_seconds,
        r.prequential_accuracy
    );
    for u in &r.retrains {
        eprintln!(
            "  row {}: {} {} promoted={} old {} new {} {:.2} s",
            u.index, u.trigger, u.strategy, u.promoted, u.n_old_rows, u.n_new_rows, u.train_seconds
        );
    }
}

/// Not a check: the README's table of drift-update settings on the synthetic stream (100 000
/// rows × 20 features, threshold trigger on), one replay per setting, printed.
/// `cargo test --lib backtest::tests::synthetic_settings -- --ignored --nocapture`
#[test]
#[ignore]
fn synthetic_settings_table() {
    let base = "[models.triggers.drift]\nmin_new_rows = 1000\nmin_rows_after_drift = 1000\ncooldown = \"30m\"\n";
    let threshold = "[models.triggers.threshold]\nenabled = true\nmin_accuracy = 0.8\nhold = \"5m\"\ncooldown = \"30m\"";
    let spec = StreamSpec {
        n_features: 20,
        rows: 100_000,
        abrupt_at: Some(30_000),
        gradual: Some((60_000, 70_000)),
        label_noise: 0.05,
        seed: 3,
        categorical: 0,
    };
    let h = History::from_stream(&spec);
    for (name, model_keys, drift_keys) in [
        ("defaults", "", ""),
        ("refresh_after_rows = 0", "", "refresh_after_rows = 0\n"),
        (
            "… and new_data_since = last_update",
            "",
            "refresh_after_rows = 0\nnew_data_since = \"last_update\"\n",
        ),
        (
            "… and restart_detectors_on_new_version = false",
            "restart_detectors_on_new_version = false\n",
            "refresh_after_rows = 0\nnew_data_since = \"last_update\"\n",
        ),
    ] {
        let cfg = config(
            20,
            &format!("max_training_rows = 5000\n{model_keys}"),
            &format!("{base}{drift_keys}{threshold}"),
        );
        let mut m = cfg.models[0].clone();
        m.train = crate::train::TrainConfig {
            num_threads: Some(1),
            ..Default::default()
        };
        let r = run_history(&m, &h, &BacktestOptions::default()).unwrap();
        eprintln!(
            "{name}: {:.3} ({} updates)",
            r.prequential_accuracy,
            r.retrains.len()
        );
    }
}

/// Not a check: the comparison on all of elec2 (45 312 rows), printed; with
/// `DRIFTD_BACKTEST_CHART=path.svg` it also writes the comparison chart.
/// `cargo test --lib backtest::tests::elec2_full -- --ignored --nocapture`
#[test]
#[ignore]
fn elec2_full_table() {
    let cfg = config(6, "max_training_rows = 2000", "");
    let opts = BacktestOptions {
        label_column: "class".into(),
        seconds_per_row: 1_800,
        ..Default::default()
    };
    let c = compare(&cfg, "m", &elec2(), &opts).unwrap();
    eprintln!(
        "elec2, {} rows ({} evaluated):\n{}",
        c.policy.input_rows,
        c.policy.rows,
        c.to_markdown()
    );
    if let Ok(path) = std::env::var("DRIFTD_BACKTEST_CHART") {
        write_comparison_svg(&c, std::path::Path::new(&path)).unwrap();
    }
}

/// A separable stream of four classes (one cluster each, well apart) whose fourth appears at
/// row `new_at` and never before (never at all with `None`).
fn stream_with_new_class(rows: usize, new_at: Option<usize>, seed: u64) -> History {
    use crate::domain::Dataset;
    use crate::train::synth::{make_classification, Concept};
    let concept = Concept::with_options(seed, 8, 6, 2, 4, 1, 2.0);
    let pool = make_classification(&concept, 2 * rows, 0, seed);
    let mut d = Dataset::empty(8);
    for i in 0..pool.len() {
        let at = d.len();
        if at == rows {
            break;
        }
        if pool.y[i] == 3.0 && new_at.is_none_or(|new_at| at < new_at) {
            continue;
        }
        d.x.extend_from_slice(pool.row(i));
        d.y.push(pool.y[i]);
        d.ts.push(at as i64 * 60);
        d.ids.push(at as i64);
    }
    History {
        feature_names: (0..8).map(|i| format!("f{i}")).collect(),
        rows: d,
        ..Default::default()
    }
}

/// Accuracy on the rows from `from` whose label is below `classes`.
fn accuracy_of_classes(r: &Report, classes: u32) -> f64 {
    let (hits, rows) = r
        .classes
        .iter()
        .filter(|c| c.class < classes)
        .fold((0.0, 0), |(h, n), c| {
            (h + c.accuracy * c.rows as f64, n + c.rows)
        });
    hits / rows as f64
}

#[test]
fn a_class_that_appears_is_learnt_and_the_old_ones_keep_their_accuracy() {
    let (rows, new_at) = (16_000, 8_000);
    let cfg = config(8, "task = \"multiclass\"\nn_classes = 3", "");
    let grown = run_history(
        &cfg.models[0],
        &stream_with_new_class(rows, Some(new_at), 5),
        &BacktestOptions::default(),
    )
    .unwrap();
    let new = grown
        .classes
        .iter()
        .find(|c| c.class == 3)
        .expect("class 3");
    eprintln!(
        "{:?}\n{:?}",
        new,
        grown
            .retrains
            .iter()
            .filter_map(|u| u.grew_classes)
            .collect::<Vec<_>>()
    );
    assert_eq!(new.first_row, new_at);
    // Learnt within 2 000 rows of its first label: its rows from there are mostly right.
    let after: Vec<f64> = new.accuracy_by_block[2..]
        .iter()
        .flatten()
        .copied()
        .collect();
    let learnt = after.iter().sum::<f64>() / after.len() as f64;
    assert!(
        learnt >= 0.8,
        "class 3 after 2 000 rows: {learnt:.3} ({new:?})"
    );
    let growth = grown.retrains.iter().find_map(|u| u.grew_classes);
    assert_eq!(growth, Some(crate::train::ClassGrowth { from: 3, to: 4 }));
    // The old classes, against the same stream without the new class.
    let without = run_history(
        &cfg.models[0],
        &stream_with_new_class(rows, None, 5),
        &BacktestOptions::default(),
    )
    .unwrap();
    let (old_grown, old_without) = (
        accuracy_of_classes(&grown, 3),
        accuracy_of_classes(&without, 3),
    );
    assert!(
        old_grown >= old_without - 0.01,
        "old classes: {old_grown:.4} with the new class, {old_without:.4} without"
    );
    let text = super::summary(&grown);
    assert!(text.contains("classes grew from 3 to 4"), "{text}");

    // With `fixed`, a history the configuration cannot hold is refused, naming the keys.
    let fixed = config(
        8,
        "task = \"multiclass\"\nn_classes = 3\nclasses = \"fixed\"",
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.csv");
    let mut csv = String::from("f0,f1,f2,f3,f4,f5,f6,f7,label\n");
    for i in 0..600 {
        csv.push_str(&format!("{i},1,2,3,4,5,6,7,{}\n", i % 4));
    }
    std::fs::write(&path, csv).unwrap();
    let e = read_history(&fixed.models[0], &path, &BacktestOptions::default()).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("150 rows") && e.contains("task") && e.contains("n_classes"),
        "{e}"
    );
    // With `grow` (the default) it is read whole.
    let h = read_history(&cfg.models[0], &path, &BacktestOptions::default()).unwrap();
    assert_eq!((h.len(), h.skipped_rows), (600, 0));
}

#[test]
fn text_columns_of_csv_and_parquet_histories_are_categorical_codes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StreamSpec {
        rows: 2_000,
        n_features: 2,
        categorical: 2,
        ..drifting()
    };
    let cfg = config(
        4,
        "feature_names = [\"f0\", \"f1\", \"c0\", \"c1\"]\ncategorical_features = [\"c0\", \"c1\"]",
        "",
    );
    let opts = BacktestOptions {
        timestamp_column: Some("ts".into()),
        ..Default::default()
    };
    let want = History::from_stream(&spec);
    for file in ["s.csv", "s.parquet"] {
        let path = dir.path().join(file);
        generate_file(&spec, &path).unwrap();
        let h = read_history(&cfg.models[0], &path, &opts).unwrap();
        assert_eq!(h.rows.x, want.rows.x, "{file}");
        assert_eq!(
            h.rows.x[2],
            crate::domain::category_code(&format!(
                "v{}",
                crate::generate::Stream::new(spec.clone())
                    .next()
                    .unwrap()
                    .categories[0]
            ))
        );
    }
    // Undeclared, a text column is refused, naming it.
    let numeric = config(4, "feature_names = [\"f0\", \"f1\", \"c0\", \"c1\"]", "");
    let e = read_history(&numeric.models[0], &dir.path().join("s.csv"), &opts).unwrap_err();
    assert!(e.to_string().contains("`c0`"), "{e}");
}

#[test]
fn a_categorical_change_is_found_and_learnt() {
    let spec = StreamSpec {
        rows: 12_000,
        n_features: 3,
        categorical: 2,
        abrupt_at: Some(6_000),
        gradual: None,
        label_noise: 0.02,
        ..drifting()
    };
    let names = "feature_names = [\"f0\", \"f1\", \"f2\", \"c0\", \"c1\"]";
    let declared = config(
        5,
        &format!("{names}\ncategorical_features = [\"c0\", \"c1\"]"),
        "",
    );
    let h = History::from_stream(&spec);
    let r = run_history(&declared.models[0], &h, &BacktestOptions::default()).unwrap();
    assert!(!drifts_in(&r, 6_000, 7_500).is_empty(), "{:?}", r.drifts);
    let after: Vec<f64> = r
        .accuracy_series
        .iter()
        .filter(|p| p.index >= 8_000)
        .map(|p| p.accuracy)
        .collect();
    let mean = after.iter().sum::<f64>() / after.len() as f64;
    // The same rows with the codes as numbers learn the categories far worse.
    let numeric = config(5, names, "");
    let n = run_history(&numeric.models[0], &h, &BacktestOptions::default()).unwrap();
    assert!(
        r.prequential_accuracy > n.prequential_accuracy + 0.02,
        "one-hot {:.4} vs codes as numbers {:.4}",
        r.prequential_accuracy,
        n.prequential_accuracy
    );
    assert!(mean > 0.8, "after the change: {mean:.3}");
}

/// With `[models.shadow]` on, the report and the chart show the challenger: where it stood
/// after each batch, and each promotion with its evidence (more often right on the same
/// rows, with significance).
#[test]
fn the_report_and_the_chart_show_the_challenger_and_its_promotions() {
    let mut cfg = stream_config();
    cfg.models[0].shadow.enabled = true;
    let r = run_history(
        &cfg.models[0],
        &History::from_stream(&drifting()),
        &BacktestOptions::default(),
    )
    .unwrap();
    assert!(!r.shadow_series.is_empty());
    assert!(!r.shadow_promotions.is_empty(), "{}", summary(&r));
    for p in &r.shadow_promotions {
        assert!(p.challenger_accuracy > p.champion_accuracy, "{p:?}");
        assert!(p.p_value < cfg.models[0].shadow.alpha, "{p:?}");
    }
    let text = summary(&r);
    assert!(
        text.contains(&format!(
            "shadow: {} promotion(s)",
            r.shadow_promotions.len()
        )),
        "{text}"
    );
    let svg = render_svg(&r, &[]);
    assert_eq!(
        svg.matches("shadow challenger (online) promoted").count(),
        r.shadow_promotions.len()
    );
    assert!(
        svg.contains("challenger in shadow ("),
        "the legend names it"
    );
    // Off, none of it.
    let off = run_history(
        &stream_config().models[0],
        &History::from_stream(&drifting()),
        &BacktestOptions::default(),
    )
    .unwrap();
    assert!(off.shadow_series.is_empty() && off.shadow_promotions.is_empty());
    assert!(!summary(&off).contains("shadow:"));
    assert!(!render_svg(&off, &[]).contains("challenger in shadow"));
}
