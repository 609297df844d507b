//! Writes batches to Postgres: readings into `message`, refused records into
//! `dead_letters`, both in one transaction.

use crate::combined::Combined;
use crate::operators::latency::Latencies;
use crate::operators::stats::{GroupedStats, minute_start, step_start};
use crate::operators::window::SourceProgress;
use crate::pgcopy::copy_rows;
use crate::reading::Reading;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A record that could not be used, kept with where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The stream the record was meant for, when known.
    pub stream: Option<String>,
    /// e.g. `kafka` or `pipeline`.
    pub source: String,
    /// Position in the source, e.g. `sensor.readings/2@1041`.
    pub position: Option<String>,
    pub payload: Vec<u8>,
    pub reason: String,
}

/// Records waiting for the next flush.
#[derive(Debug, Default)]
pub struct Batch {
    pub readings: Vec<Reading>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.readings.len() + self.dead_letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.readings.clear();
        self.dead_letters.clear();
    }
}

/// Writes one batch in a single transaction: all of it lands, or none of it.
pub async fn write_batch(pool: &PgPool, batch: &Batch) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    stage_into(&mut tx, batch).await?;
    tx.commit().await
}

/// The stream name under which sensor readings' latency is kept.
pub const SENSOR_STREAM: &str = "sensors";

/// Inserts the batch, and updates the statistics it feeds, in `tx`, so the
/// caller can add what must land with it (such as source offsets).
pub async fn stage_into(
    tx: &mut Transaction<'static, Postgres>,
    batch: &Batch,
) -> Result<(), sqlx::Error> {
    if !batch.readings.is_empty() {
        // now() is fixed for the transaction: every row's `created`, and its latency.
        let stored_at_us: i64 =
            sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000000)::int8")
                .fetch_one(&mut **tx)
                .await?;
        insert_readings(tx, &batch.readings).await?;
        insert_dead_letters(tx, &batch.dead_letters).await?;
        // Last, as one statement: other batches wait for these rows' locks.
        let mut summaries = Combined::default();
        add_sensor_stats(&mut summaries, &batch.readings);
        add_latency(&mut summaries, SENSOR_STREAM, &batch.readings, stored_at_us);
        add_latency_minutes(&mut summaries, &batch.readings, stored_at_us);
        let newest_ms = batch.readings.iter().map(|r| r.ts * 1000).max();
        add_activity(
            &mut summaries,
            SENSOR_STREAM,
            batch.readings.len(),
            newest_ms,
        );
        summaries.execute(&mut **tx).await
    } else {
        insert_dead_letters(tx, &batch.dead_letters).await
    }
}

/// Raw rows by binary COPY: the fastest way into a table.
async fn insert_readings(
    tx: &mut Transaction<'_, Postgres>,
    readings: &[Reading],
) -> Result<(), sqlx::Error> {
    let statement = "COPY message (guid, ts, temp, ingested_at) FROM STDIN (FORMAT binary)";
    copy_rows(tx, statement, readings, |rows, r| {
        rows.row(4)
            .text(&r.guid)
            .int8(r.ts)
            .numeric2((r.temp * 100.0).round() as i64)
            .timestamptz(r.received_at);
    })
    .await?;
    Ok(())
}

/// The all-time median's bucket of a temperature, in tenths of a degree: the
/// stored value (hundredths) rounded half away from zero, as Postgres'
/// `round(temp, 1)` does. A bucket per hundredth would be exact, but a batch
/// then updates nearly a row per reading; tenths bound the rows per batch
/// (2,500 for the seed's sensors) and the median's error to 0.05 °C.
pub fn median_bucket(temp: f64) -> i64 {
    let hundredths = (temp * 100.0).round() as i64;
    (hundredths + 5 * hundredths.signum()) / 10
}

/// The tables of statistics per sensor and time step that charts read.
pub use app::chart::rollup::{SENSOR_STEPS, Steps as SensorSteps};

/// The statement that adds statistics per sensor and step to the stored
/// ones: `source` selects guid, step start, count, sum, lowest and highest
/// temperature, and the latest reading's epoch seconds.
fn merge_sensor_stats(steps: SensorSteps, source: &str) -> String {
    format!(
        "INSERT INTO {table} AS s (guid, bucket_start, msg_count, temp_sum, temp_min, temp_max, ts_max)
         {source}
         ON CONFLICT (guid, bucket_start) DO UPDATE
            SET msg_count = s.msg_count + excluded.msg_count,
                temp_sum  = s.temp_sum + excluded.temp_sum,
                temp_min  = least(s.temp_min, excluded.temp_min),
                temp_max  = greatest(s.temp_max, excluded.temp_max),
                ts_max    = greatest(s.ts_max, excluded.ts_max)",
        table = steps.table
    )
}

/// The statement that adds latency counts: `source` selects the minute of
/// event time (epoch seconds), the stored instant (epoch microseconds), the
/// event second's offset in its minute and a count. A row per minute and
/// stored instant holds the seconds and their counts; each reading's
/// latency is the stored instant minus its event second.
fn insert_latency_counts(source: &str) -> String {
    format!(
        "INSERT INTO sensor_latency_batches (bucket_start, stored_at_us, seconds, counts)
         SELECT to_timestamp(minute), stored_at_us, array_agg(second ORDER BY second), array_agg(n ORDER BY second)
           FROM ({source}) AS r(minute, stored_at_us, second, n)
          GROUP BY minute, stored_at_us"
    )
}

/// Fills the summaries that charts read in place of the readings, from
/// readings stored some other way (such as a bulk load): the statistics per
/// sensor and step, the temperature counts behind the medians, and the
/// latency counts per minute, for event times `from..=to`.
pub async fn summarize_stored_readings(
    pool: &PgPool,
    from: i64,
    to: i64,
) -> Result<(), sqlx::Error> {
    for steps in SENSOR_STEPS {
        let source = format!(
            "SELECT guid, to_timestamp(floor(ts / {s}.0) * {s}), count(*), sum(temp), min(temp), max(temp), max(ts)
               FROM message WHERE ts BETWEEN $1 AND $2 GROUP BY 1, 2",
            s = steps.seconds
        );
        sqlx::query(&merge_sensor_stats(steps, &source))
            .bind(from)
            .bind(to)
            .execute(pool)
            .await?;
    }
    // round(temp, 1) is the median's bucket, as `median_bucket` computes it.
    sqlx::query(
        "INSERT INTO sensor_temp_histogram AS h (guid, temp, msg_count)
         SELECT guid, round(temp, 1), count(*) FROM message WHERE ts BETWEEN $1 AND $2 GROUP BY 1, 2
         ON CONFLICT (guid, temp) DO UPDATE SET msg_count = h.msg_count + excluded.msg_count",
    )
    .bind(from)
    .bind(to)
    .execute(pool)
    .await?;
    sqlx::query(&insert_latency_counts(
        "SELECT minute, stored_at_us, (ts - minute)::int2, count(*)
           FROM (SELECT ts, floor(ts / 60.0)::int8 * 60 AS minute,
                        (extract(epoch FROM created) * 1000000)::int8 AS stored_at_us
                   FROM message WHERE ts BETWEEN $1 AND $2) AS m
          GROUP BY minute, stored_at_us, ts - minute",
    ))
    .bind(from)
    .bind(to)
    .execute(pool)
    .await?;
    Ok(())
}

/// Adds the batch's statistics per sensor and step, and its value counts,
/// to the stored ones.
fn add_sensor_stats(summaries: &mut Combined, readings: &[Reading]) {
    for steps in SENSOR_STEPS {
        add_step_stats(summaries, steps, readings);
    }
    let mut histogram: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for r in readings {
        *histogram
            .entry((r.guid.as_str(), median_bucket(r.temp)))
            .or_default() += 1;
    }
    let guids: Vec<&str> = histogram.keys().map(|(guid, _)| *guid).collect();
    let tenths: Vec<i64> = histogram.keys().map(|(_, tenth)| *tenth).collect();
    let counts: Vec<i64> = histogram.values().copied().collect();
    // A row per sensor, inserted rather than upserted: `median_counts`
    // folds them into the histogram.
    summaries
        .with(
            "INSERT INTO sensor_temp_counts_pending (guid, tenths, counts)
             SELECT guid, array_agg(tenth::int4 ORDER BY tenth), array_agg(n ORDER BY tenth)
               FROM unnest($1::text[], $2::int8[], $3::int8[]) AS r(guid, tenth, n)
              GROUP BY guid",
        )
        .bind(&guids)
        .bind(&tenths)
        .bind(&counts);
}

/// Adds the batch's statistics per sensor and `steps` to the stored ones.
fn add_step_stats(summaries: &mut Combined, steps: SensorSteps, readings: &[Reading]) {
    let mut per_step: GroupedStats<(&str, i64)> = GroupedStats::default();
    let mut latest: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for r in readings {
        let key = (r.guid.as_str(), step_start(r.ts, steps.seconds));
        per_step.add(key, r.temp);
        let last = latest.entry(key).or_insert(r.ts);
        *last = (*last).max(r.ts);
    }
    let rows = per_step.len();
    let (mut guids, mut starts, mut counts) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let (mut sums, mut mins, mut maxes, mut last_times) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for ((guid, start), stats) in per_step.iter() {
        last_times.push(latest[&(*guid, *start)]);
        guids.push(*guid);
        starts.push(*start);
        counts.push(stats.count as i64);
        sums.push(stats.sum);
        mins.push(stats.min);
        maxes.push(stats.max);
    }
    // Keys arrive sorted, so concurrent batches lock rows in the same order.
    summaries
        .with(&merge_sensor_stats(
            steps,
            "SELECT guid, to_timestamp(start), n, round(total::numeric, 2), low::numeric(5, 2), high::numeric(5, 2), last
               FROM unnest($1::text[], $2::int8[], $3::int8[], $4::float8[], $5::float8[], $6::float8[], $7::int8[])
                    AS r(guid, start, n, total, low, high, last)",
        ))
        .bind(&guids)
        .bind(&starts)
        .bind(&counts)
        .bind(&sums)
        .bind(&mins)
        .bind(&maxes)
        .bind(&last_times);
}

/// Adds the batch's latency counts: per minute of event time, its seconds
/// that have readings and how many, with the instant the batch is stored.
fn add_latency_minutes(summaries: &mut Combined, readings: &[Reading], stored_at_us: i64) {
    let mut counts: BTreeMap<(i64, i16), i64> = BTreeMap::new();
    for r in readings {
        let minute = minute_start(r.ts);
        *counts.entry((minute, (r.ts - minute) as i16)).or_default() += 1;
    }
    let minutes: Vec<i64> = counts.keys().map(|(minute, _)| *minute).collect();
    let seconds: Vec<i16> = counts.keys().map(|(_, second)| *second).collect();
    let counts: Vec<i64> = counts.into_values().collect();
    summaries
        .with(&insert_latency_counts(
            "SELECT minute, $4::int8, second, n
               FROM unnest($1::int8[], $2::int2[], $3::int8[]) AS r(minute, second, n)",
        ))
        .bind(&minutes)
        .bind(&seconds)
        .bind(&counts)
        .bind(stored_at_us);
}

/// Adds the batch's latencies (stored time minus event time) per key to the stored ones.
fn add_latency(summaries: &mut Combined, stream: &str, readings: &[Reading], stored_at_us: i64) {
    let mut per_key: BTreeMap<&str, Latencies> = BTreeMap::new();
    for r in readings {
        let latency_ms = (stored_at_us - r.ts * 1_000_000) / 1000;
        per_key.entry(r.guid.as_str()).or_default().add(latency_ms);
    }
    add_latencies(summaries, stream, &per_key);
}

/// Adds a batch's latencies per key to the stream's stored ones.
pub(crate) async fn store_latencies(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    per_key: &BTreeMap<&str, Latencies>,
) -> Result<(), sqlx::Error> {
    let mut statement = Combined::default();
    add_latencies(&mut statement, stream, per_key);
    statement.execute(&mut **tx).await
}

/// The statements of [`store_latencies`].
pub(crate) fn add_latencies(
    summaries: &mut Combined,
    stream: &str,
    per_key: &BTreeMap<&str, Latencies>,
) {
    if per_key.is_empty() {
        return;
    }
    let keys: Vec<&str> = per_key.keys().copied().collect();
    let counts: Vec<i64> = per_key.values().map(|l| l.count as i64).collect();
    let sums: Vec<i64> = per_key.values().map(|l| l.sum_ms).collect();
    let mins: Vec<i64> = per_key.values().map(|l| l.min_ms).collect();
    let maxes: Vec<i64> = per_key.values().map(|l| l.max_ms).collect();
    summaries
        .with(
            "INSERT INTO latency_stats AS l (stream, key, msg_count, sum_ms, min_ms, max_ms)
             SELECT $1, key, n, total, low, high
               FROM unnest($2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[]) AS r(key, n, total, low, high)
             ON CONFLICT (stream, key) DO UPDATE
                SET msg_count = l.msg_count + excluded.msg_count,
                    sum_ms    = l.sum_ms + excluded.sum_ms,
                    min_ms    = least(l.min_ms, excluded.min_ms),
                    max_ms    = greatest(l.max_ms, excluded.max_ms)",
        )
        .bind(stream)
        .bind(&keys)
        .bind(&counts)
        .bind(&sums)
        .bind(&mins)
        .bind(&maxes);

    let (mut bucket_keys, mut buckets, mut bucket_counts) = (Vec::new(), Vec::new(), Vec::new());
    for (key, latencies) in per_key {
        for (bucket, count) in &latencies.buckets {
            bucket_keys.push(*key);
            buckets.push(*bucket);
            bucket_counts.push(*count as i64);
        }
    }
    summaries
        .with(
            "INSERT INTO latency_histogram AS h (stream, key, bucket_ms, msg_count)
             SELECT $1, key, bucket, n
               FROM unnest($2::text[], $3::int8[], $4::int8[]) AS r(key, bucket, n)
             ON CONFLICT (stream, key, bucket_ms) DO UPDATE SET msg_count = h.msg_count + excluded.msg_count",
        )
        .bind(stream)
        .bind(&bucket_keys)
        .bind(&buckets)
        .bind(&bucket_counts);
}

/// Adds a flush's records to its stream's activity in the current minute.
pub(crate) async fn record_activity(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    records: usize,
    newest_event_ms: Option<i64>,
) -> Result<(), sqlx::Error> {
    let mut statement = Combined::default();
    add_activity(&mut statement, stream, records, newest_event_ms);
    statement.execute(&mut **tx).await
}

/// The statement of [`record_activity`].
pub(crate) fn add_activity(
    summaries: &mut Combined,
    stream: &str,
    records: usize,
    newest_event_ms: Option<i64>,
) {
    if records == 0 {
        return;
    }
    summaries
        .with(
            "INSERT INTO stream_activity AS a (stream, minute, records, newest_event)
             VALUES ($1, date_trunc('minute', now()), $2, to_timestamp($3 / 1000.0))
             ON CONFLICT (stream, minute) DO UPDATE
                SET records = a.records + excluded.records,
                    newest_event = greatest(a.newest_event, excluded.newest_event)",
        )
        .bind(stream)
        .bind(records as i64)
        .bind(newest_event_ms);
    // Delivered when the flush commits, it tells live dashboards which
    // stream has new data (see `crate::live`).
    summaries
        .select("pg_notify('pulseboard_data', $1)")
        .bind(stream);
}

pub(crate) async fn insert_dead_letters(
    tx: &mut Transaction<'_, Postgres>,
    letters: &[DeadLetter],
) -> Result<(), sqlx::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    let streams: Vec<Option<&str>> = letters.iter().map(|d| d.stream.as_deref()).collect();
    let sources: Vec<&str> = letters.iter().map(|d| d.source.as_str()).collect();
    let positions: Vec<Option<&str>> = letters.iter().map(|d| d.position.as_deref()).collect();
    let payloads: Vec<&[u8]> = letters.iter().map(|d| d.payload.as_slice()).collect();
    let reasons: Vec<&str> = letters.iter().map(|d| d.reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO dead_letters (source, position, payload, reason, stream)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::text[])",
    )
    .bind(&sources)
    .bind(&positions)
    .bind(&payloads)
    .bind(&reasons)
    .bind(&streams)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The work was abandoned because the service is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("shutdown while the database was unavailable")]
pub struct Abandoned;

/// An event no open window would take, kept in `late_events` with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct LateEvent {
    pub event_ms: i64,
    /// The event as JSON.
    pub payload: String,
    pub reason: String,
}

/// Keeps a stream's late events.
pub async fn insert_late_events(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    late: &[LateEvent],
) -> Result<(), sqlx::Error> {
    if late.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO late_events (stream, event_time, payload, reason)
         SELECT $1, to_timestamp(t_ms / 1000.0), payload::jsonb, reason
           FROM unnest($2::int8[], $3::text[], $4::text[]) AS r(t_ms, payload, reason)",
    )
    .bind(stream)
    .bind(late.iter().map(|l| l.event_ms).collect::<Vec<_>>())
    .bind(late.iter().map(|l| l.payload.as_str()).collect::<Vec<_>>())
    .bind(late.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Reads a window's stored watermark (epoch ms) and locks it until the
/// transaction ends, so one flush at a time moves it; `None` before its first event.
pub async fn lock_watermark(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    window: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO window_watermarks (stream, window_name) VALUES ($1, $2)
         ON CONFLICT (stream, window_name) DO UPDATE SET stream = excluded.stream
         RETURNING watermark_ms",
    )
    .bind(stream)
    .bind(window)
    .fetch_one(&mut **tx)
    .await
}

/// Where a window's stored watermark got to (epoch ms), without locking it;
/// `None` before its first event.
pub async fn stored_watermark<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream: &str,
    window: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let stored: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT watermark_ms FROM window_watermarks WHERE stream = $1 AND window_name = $2",
    )
    .bind(stream)
    .bind(window)
    .fetch_optional(executor)
    .await?;
    Ok(stored.flatten())
}

/// Stores where a window's watermark got to; a lower one leaves it as it is.
pub async fn save_watermark(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    window: &str,
    watermark_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO window_watermarks (stream, window_name, watermark_ms) VALUES ($1, $2, $3)
         ON CONFLICT (stream, window_name)
         DO UPDATE SET watermark_ms = greatest(window_watermarks.watermark_ms, excluded.watermark_ms)",
    )
    .bind(stream)
    .bind(window)
    .bind(watermark_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every source's kept progress for a window: `(source, progress)`.
pub async fn load_progress(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    window: &str,
) -> Result<Vec<(String, SourceProgress)>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT source, max_event_ms, seen_ms FROM window_sources
          WHERE stream = $1 AND window_name = $2",
    )
    .bind(stream)
    .bind(window)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(source, max_event_ms, seen_ms)| {
            let progress = SourceProgress {
                max_event_ms,
                seen_ms,
            };
            (source, progress)
        })
        .collect())
}

/// Keeps how far sources have got for a window; neither figure goes back.
pub async fn save_progress(
    tx: &mut Transaction<'_, Postgres>,
    stream: &str,
    window: &str,
    sources: &[(String, SourceProgress)],
) -> Result<(), sqlx::Error> {
    if sources.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = sources.iter().map(|(key, _)| key.as_str()).collect();
    let maxima: Vec<i64> = sources.iter().map(|(_, p)| p.max_event_ms).collect();
    let seen: Vec<i64> = sources.iter().map(|(_, p)| p.seen_ms).collect();
    sqlx::query(
        "INSERT INTO window_sources (stream, window_name, source, max_event_ms, seen_ms)
         SELECT $1, $2, r.source, r.max_event_ms, r.seen_ms
           FROM unnest($3::text[], $4::int8[], $5::int8[]) AS r(source, max_event_ms, seen_ms)
         ON CONFLICT (stream, window_name, source) DO UPDATE
            SET max_event_ms = greatest(window_sources.max_event_ms, excluded.max_event_ms),
                seen_ms = greatest(window_sources.seen_ms, excluded.seen_ms)",
    )
    .bind(stream)
    .bind(window)
    .bind(keys)
    .bind(maxima)
    .bind(seen)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs `attempt` until it succeeds, backing off while the database is unavailable.
///
/// Nothing is dropped while retrying: callers stop reading their source until
/// this returns, so backpressure reaches the producer. On shutdown it makes
/// one last attempt, so a shutdown during a brief blip still lands the work.
pub async fn retry<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Result<T, Abandoned>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(error) => tracing::warn!(%error, retry_in = ?delay, "{what} failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return attempt().await.map_err(|_| Abandoned),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::median_bucket;

    #[test]
    fn median_buckets_round_half_away_from_zero_like_postgres() {
        assert_eq!(median_bucket(70.44), 704);
        assert_eq!(median_bucket(70.45), 705);
        assert_eq!(median_bucket(70.5), 705);
        assert_eq!(median_bucket(0.0), 0);
        assert_eq!(median_bucket(-0.04), 0);
        assert_eq!(median_bucket(-0.05), -1);
        assert_eq!(median_bucket(-12.35), -124);
        assert_eq!(median_bucket(999.99), 10000);
    }
}
