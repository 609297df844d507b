//! A custom stream's records waiting for the next flush, and how a flush
//! writes them: raw rows by `UNNEST`, rollup and window deltas pre-aggregated
//! in memory and added to the stored rows, window watermarks, late events,
//! latency, and dead letters, in one transaction.

use super::{CustomStream, RollupPlan, Row, Value, decode};
use crate::consumer::{Decode, Sink};
use crate::kafka::{JsonPublisher, PendingMessages};
use crate::operators::latency::Latencies;
use crate::operators::stats::Stats;
use crate::operators::window::{Admission, SourceProgress, Window, WindowSpec, WindowedAggregator};
use crate::reading::epoch_micros;
use crate::store::{self, DeadLetter, LateEvent};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row as _, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Records of one custom stream held for the next flush.
pub struct CustomBatch {
    pub stream: Arc<CustomStream>,
    pub rows: Vec<Row>,
    pub dead_letters: Vec<DeadLetter>,
    /// Where a Kafka consumer produces the stream's outputs after each commit.
    publisher: Option<Arc<JsonPublisher>>,
    unpublished: PendingMessages,
    /// When joins last looked at their waiting records.
    resolved_at: std::time::Instant,
}

/// How often a consumer with no new records still lets joins look at their
/// waiting records, so matches that raced and expired waits move on.
const RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl CustomBatch {
    pub fn new(stream: Arc<CustomStream>) -> Self {
        CustomBatch {
            stream,
            rows: Vec::new(),
            dead_letters: Vec::new(),
            publisher: None,
            unpublished: PendingMessages::new(),
            resolved_at: std::time::Instant::now(),
        }
    }

    /// A batch that, as a consumer's sink, produces the stream's outputs
    /// once each flush has committed.
    pub fn publishing(self, publisher: Option<Arc<JsonPublisher>>) -> Self {
        CustomBatch { publisher, ..self }
    }

    /// Decodes one record into the batch, or keeps it as a dead letter.
    /// Returns the reason it was refused, if it was.
    pub fn add(
        &mut self,
        source: &str,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Option<String> {
        let record = self.stream.decode_from(source, payload, position);
        let reason = record.as_ref().err().map(|d| d.reason.clone());
        Sink::hold(self, record);
        reason
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.dead_letters.clear();
    }

    /// Writes the batch in `tx`. Returns what is to be produced to the
    /// stream's output topics once `tx` has committed.
    pub async fn stage(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<PendingMessages, sqlx::Error> {
        let mut outputs = PendingMessages::new();
        if !self.rows.is_empty() {
            let stored_at_us: i64 =
                sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000000)::int8")
                    .fetch_one(&mut **tx)
                    .await?;
            // Every window's watermark is locked first, in the definition's
            // order, so concurrent flushes of the stream cannot deadlock.
            let mut admitted = Vec::with_capacity(self.stream.rollups.len());
            for plan in &self.stream.rollups {
                admitted.push(match plan.window {
                    Some(spec) => Some(self.admit(tx, plan, spec).await?),
                    None => None,
                });
            }
            if self.stream.raw_rows {
                self.insert_rows(tx, &self.stream.insert_sql).await?;
            }
            for (index, admitted) in admitted.iter().enumerate() {
                let plan = &self.stream.rollups[index];
                self.upsert_rollup(tx, plan, admitted.as_ref(), &mut outputs)
                    .await?;
                if let Some(admitted) = admitted {
                    self.close_windows(tx, plan, admitted, &mut outputs).await?;
                }
            }
            // Every record queues for each join.
            for (_, queue) in &self.stream.joins {
                self.insert_rows(tx, queue).await?;
            }
            self.store_latency(tx, stored_at_us).await?;
            let newest_ms = self.rows.iter().map(|r| r.event_ms).max();
            store::record_activity(tx, &self.stream.name, self.rows.len(), newest_ms).await?;
        }
        // What can be joined moves on, with or without new records: this
        // stream's may be the match others wait for, and waits run out.
        let joins = self.stream.joins.iter().map(|(join, _)| join);
        for join in joins.chain(&self.stream.joined_by) {
            changed_rows(tx, &join.topics, sqlx::query(join.resolve()), &mut outputs).await?;
        }
        store::insert_dead_letters(tx, &self.dead_letters).await?;
        Ok(outputs)
    }

    /// Inserts the rows with `statement` (into the raw table, or a join's queue).
    async fn insert_rows(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        statement: &str,
    ) -> Result<(), sqlx::Error> {
        let fields = &self.stream.fields;
        let mut columns: Vec<Column> = fields
            .iter()
            .map(|f| Column::new(f.kind, self.rows.len()))
            .collect();
        let mut event_ms = Vec::with_capacity(self.rows.len());
        let mut received_us = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            for (column, value) in columns.iter_mut().zip(&row.values) {
                column.push(value);
            }
            event_ms.push(row.event_ms);
            received_us.push(row.received_us);
        }
        let mut query = sqlx::query(statement);
        for column in columns {
            query = column.bind(query);
        }
        query
            .bind(event_ms)
            .bind(received_us)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Runs the rows, in the order they arrived, past the window's watermark
    /// as stored, and says which windows took each one.
    async fn admit(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        plan: &RollupPlan,
        spec: WindowSpec,
    ) -> Result<Admitted, sqlx::Error> {
        let (stream, window) = (&self.stream.name, &plan.name);
        let stored = store::lock_watermark(tx, stream, window).await?;
        // A clock per source (each Kafka partition, and HTTP), as kept by
        // whichever instance read it last: the watermark trails the slowest
        // that is not idle.
        let now_ms = epoch_micros() / 1000;
        let mut clock = WindowedAggregator::resuming(spec, stored);
        let kept = store::load_progress(tx, stream, window).await?;
        let kept = kept
            .into_iter()
            .filter_map(|(key, progress)| Some((self.stream.source_named(&key)?, progress)));
        clock.restore_sources(kept, now_ms);
        // Every source of these rows is known before the first row moves the
        // watermark. (A partition that has never delivered holds nothing back:
        // it would, for ever, since each flush starts a fresh clock.)
        let sources: BTreeSet<u32> = self.rows.iter().map(|row| row.source).collect();
        for source in &sources {
            clock.register_source(*source, now_ms);
        }
        let mut windows = Vec::with_capacity(self.rows.len());
        let mut late = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            windows.push(
                match clock.push_from(row.source, now_ms, (), row.event_ms, 0.0) {
                    Admission::Accepted { windows } => windows,
                    Admission::Partial { accepted, .. } => accepted,
                    Admission::TooLate { refused } => {
                        let starts: Vec<String> = refused
                            .iter()
                            .map(|w| crate::sales::format_timestamp(w.start))
                            .collect();
                        late.push((
                            i,
                            format!(
                                "too late for window {:?}: windows starting {} are closed",
                                plan.name,
                                starts.join(", ")
                            ),
                        ));
                        Vec::new()
                    }
                    Admission::OutOfRange => {
                        late.push((
                            i,
                            format!("no window {:?} can hold this event time", plan.name),
                        ));
                        Vec::new()
                    }
                },
            );
        }
        let progress = sources
            .into_iter()
            .filter_map(|source| {
                let kept = clock.source_progress(source)?;
                Some((self.stream.source_key(source), kept))
            })
            .collect();
        Ok(Admitted {
            windows,
            late,
            watermark: clock.watermark(),
            progress,
        })
    }

    /// Stores where the window's watermark got to, marks the windows it
    /// passed as final, and keeps the events too late for any window.
    async fn close_windows(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        plan: &RollupPlan,
        admitted: &Admitted,
        outputs: &mut PendingMessages,
    ) -> Result<(), sqlx::Error> {
        if let Some(watermark) = admitted.watermark {
            store::save_watermark(tx, &self.stream.name, &plan.name, watermark).await?;
            store::save_progress(tx, &self.stream.name, &plan.name, &admitted.progress).await?;
            let finalize = plan.output_sql.as_ref().map(|o| o.finalize.clone());
            let statement = finalize.unwrap_or_else(|| plan.finalize_sql());
            let query = sqlx::query(&statement).bind(watermark);
            changed_rows(tx, &plan.topics, query, outputs).await?;
        }
        if admitted.late.is_empty() {
            return Ok(());
        }
        let late: Vec<LateEvent> = admitted
            .late
            .iter()
            .map(|(i, reason)| LateEvent {
                event_ms: self.rows[*i].event_ms,
                payload: self.stream.to_json(&self.rows[*i]),
                reason: reason.clone(),
            })
            .collect();
        store::insert_late_events(tx, &self.stream.name, &late).await
    }

    /// Adds the rows' deltas to a rollup's buckets, or to the windows
    /// `admitted` took them into.
    async fn upsert_rollup(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        plan: &RollupPlan,
        admitted: Option<&Admitted>,
        outputs: &mut PendingMessages,
    ) -> Result<(), sqlx::Error> {
        let fields = &self.stream.fields;
        // Grouped by dimension values, then by grain and bucket. The order is
        // the same in every instance, so concurrent batches lock rows in the
        // same order. One key buffer serves every row: no allocation per row.
        let mut groups: BTreeMap<Vec<KeyPart<'_>>, BTreeMap<(usize, i64), Group>> = BTreeMap::new();
        let mut dims: Vec<KeyPart<'_>> = Vec::with_capacity(plan.group_by.len());
        let mut row_buckets: Vec<(usize, i64)> = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            row_buckets.clear();
            match admitted {
                Some(admitted) => {
                    row_buckets.extend(admitted.windows[r].iter().map(|w| (0, w.start)))
                }
                None => {
                    row_buckets.extend(plan.grains.iter().enumerate().map(|(g, (_, width))| {
                        let start = if *width == 0 {
                            0
                        } else {
                            row.event_ms - row.event_ms.rem_euclid(*width)
                        };
                        (g, start)
                    }))
                }
            }
            if row_buckets.is_empty() {
                continue;
            }
            dims.clear();
            dims.extend(plan.group_by.iter().map(|&i| KeyPart::of(&row.values[i])));
            let buckets = match groups.get_mut(dims.as_slice()) {
                Some(buckets) => buckets,
                None => groups.entry(dims.clone()).or_default(),
            };
            for &(g, start) in &row_buckets {
                let group = buckets
                    .entry((g, start))
                    .or_insert_with(|| Group::new(plan.metrics.len()));
                group.records += 1;
                for (m, &field) in plan.metrics.iter().enumerate() {
                    if let Some(x) = number(&row.values[field]) {
                        match &mut group.metrics[m] {
                            Some(stats) => stats.add(x),
                            empty => *empty = Some(Stats::of(x)),
                        }
                    }
                }
            }
        }
        let groups: Vec<(&[KeyPart<'_>], (usize, i64), &Group)> = groups
            .iter()
            .flat_map(|(key, buckets)| {
                buckets
                    .iter()
                    .map(move |(bucket, group)| (key.as_slice(), *bucket, group))
            })
            .collect();
        let n = groups.len();
        let mut grain = Vec::with_capacity(n);
        let mut starts: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut ends: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut dims: Vec<Column> = plan
            .group_by
            .iter()
            .map(|&i| Column::new(fields[i].kind, n))
            .collect();
        let mut records = Vec::with_capacity(n);
        let mut measures: Vec<MeasureColumns> = plan
            .metrics
            .iter()
            .map(|_| MeasureColumns::default())
            .collect();
        for &(key, (g, start), group) in &groups {
            let (label, width) = &plan.grains[g];
            grain.push(label.as_str());
            let bounded = *width > 0;
            starts.push(bounded.then_some(start));
            ends.push(bounded.then_some(start + width));
            for (column, part) in dims.iter_mut().zip(key) {
                column.push(&part.value());
            }
            records.push(group.records);
            for (m, stats) in group.metrics.iter().enumerate() {
                let columns = &mut measures[m];
                columns.count.push(stats.map_or(0, |s| s.count as i64));
                columns.sum.push(stats.map(|s| s.sum));
                columns.min.push(stats.map(|s| s.min));
                columns.max.push(stats.map(|s| s.max));
            }
        }
        let statement = plan
            .output_sql
            .as_ref()
            .map_or(&plan.upsert_sql, |o| &o.upsert);
        let mut query = sqlx::query(statement).bind(grain).bind(starts).bind(ends);
        for column in dims {
            query = column.bind(query);
        }
        query = query.bind(records);
        for columns in measures {
            query = query
                .bind(columns.count)
                .bind(columns.sum)
                .bind(columns.min)
                .bind(columns.max);
        }
        changed_rows(tx, &plan.topics, query, outputs).await
    }

    async fn store_latency(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        stored_at_us: i64,
    ) -> Result<(), sqlx::Error> {
        let mut per_key: BTreeMap<&str, Latencies> = BTreeMap::new();
        for row in &self.rows {
            let key = match self.stream.latency_key.map(|i| &row.values[i]) {
                Some(Value::Text(key)) => key.as_str(),
                _ => "",
            };
            per_key
                .entry(key)
                .or_default()
                .add(stored_at_us / 1000 - row.event_ms);
        }
        store::store_latencies(tx, &self.stream.name, &per_key).await
    }
}

/// Runs a statement on a rollup's, window's or join's table. When the table
/// has output topics, the statement returns each row it changed as
/// `(key, JSON)`, and each becomes a message to every topic.
async fn changed_rows(
    tx: &mut Transaction<'static, Postgres>,
    topics: &[String],
    query: Query<'_, Postgres, PgArguments>,
    outputs: &mut PendingMessages,
) -> Result<(), sqlx::Error> {
    if topics.is_empty() {
        query.execute(&mut **tx).await?;
        return Ok(());
    }
    for row in query.fetch_all(&mut **tx).await? {
        let key: String = row.try_get(0)?;
        let json: String = row.try_get(1)?;
        for topic in topics {
            outputs.push((topic.clone(), key.clone(), json.clone().into_bytes()));
        }
    }
    Ok(())
}

/// Which windows of one window plan each row was admitted to.
#[derive(Debug)]
struct Admitted {
    /// Per row, in order; empty for a row too late for every window.
    windows: Vec<Vec<Window>>,
    /// Rows too late for every window, with the reason.
    late: Vec<(usize, String)>,
    /// Where the watermark stands after these rows.
    watermark: Option<i64>,
    /// How far each source of these rows has got, to keep.
    progress: Vec<(String, SourceProgress)>,
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// One metric's rollup columns, gathered to bind as arrays.
#[derive(Debug, Default)]
struct MeasureColumns {
    count: Vec<i64>,
    sum: Vec<Option<f64>>,
    min: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
}

/// One group's record count and, per measured field, its statistics (none
/// while no record of the group had a value for the field).
#[derive(Debug)]
struct Group {
    records: i64,
    metrics: Vec<Option<Stats>>,
}

impl Group {
    fn new(metrics: usize) -> Self {
        Group {
            records: 0,
            metrics: vec![None; metrics],
        }
    }
}

/// A group-by value that can key a map (floats by their bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(u64),
    Bool(bool),
    Time(i64),
}

impl<'a> KeyPart<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => KeyPart::Null,
            Value::Text(t) => KeyPart::Text(t),
            Value::Int(i) => KeyPart::Int(*i),
            // -0.0 and 0.0 are one value to Postgres, so one group here.
            Value::Float(x) => KeyPart::Float(if *x == 0.0 {
                0.0_f64.to_bits()
            } else {
                x.to_bits()
            }),
            Value::Bool(b) => KeyPart::Bool(*b),
            Value::Time(us) => KeyPart::Time(*us),
        }
    }

    fn value(&self) -> Value {
        match self {
            KeyPart::Null => Value::Null,
            KeyPart::Text(t) => Value::Text(t.to_string()),
            KeyPart::Int(i) => Value::Int(*i),
            KeyPart::Float(bits) => Value::Float(f64::from_bits(*bits)),
            KeyPart::Bool(b) => Value::Bool(*b),
            KeyPart::Time(us) => Value::Time(*us),
        }
    }
}

/// One column's values, gathered to bind as an array.
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

impl Column {
    fn new(kind: crate::definitions::FieldType, capacity: usize) -> Self {
        use crate::definitions::FieldType;
        match kind {
            FieldType::String => Column::Text(Vec::with_capacity(capacity)),
            FieldType::Integer | FieldType::Timestamp => Column::Int(Vec::with_capacity(capacity)),
            FieldType::Float => Column::Float(Vec::with_capacity(capacity)),
            FieldType::Boolean => Column::Bool(Vec::with_capacity(capacity)),
        }
    }

    /// Decoding checked the types, so a value always fits its column.
    fn push(&mut self, value: &Value) {
        match self {
            Column::Text(v) => v.push(match value {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            }),
            Column::Int(v) => v.push(match value {
                Value::Int(i) | Value::Time(i) => Some(*i),
                _ => None,
            }),
            Column::Float(v) => v.push(number(value)),
            Column::Bool(v) => v.push(match value {
                Value::Bool(b) => Some(*b),
                _ => None,
            }),
        }
    }

    fn bind<'q>(self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        match self {
            Column::Text(v) => query.bind(v),
            Column::Int(v) => query.bind(v),
            Column::Float(v) => query.bind(v),
            Column::Bool(v) => query.bind(v),
        }
    }
}

impl CustomStream {
    /// One record as a row of the stream, or a dead letter with the reason.
    fn decode_from(
        &self,
        source: &str,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Result<Row, DeadLetter> {
        decode(&self.fields, self.event_time, payload, epoch_micros()).map_err(|reason| {
            DeadLetter {
                stream: Some(self.name.clone()),
                source: source.into(),
                position: Some(position()),
                payload: payload.to_vec(),
                reason,
            }
        })
    }
}

impl Decode for CustomStream {
    type Record = Result<Row, DeadLetter>;

    fn decode(
        &self,
        topic: &str,
        partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Self::Record {
        let mut record = self.decode_from("kafka", payload, position);
        if let Ok(row) = &mut record {
            row.source = self.source_of(topic, partition);
        }
        record
    }
}

impl Sink for CustomBatch {
    type Staged = PendingMessages;
    type Decoder = CustomStream;

    fn decoder(&self) -> Arc<CustomStream> {
        self.stream.clone()
    }

    fn hold(&mut self, record: Result<Row, DeadLetter>) {
        match record {
            Ok(row) => self.rows.push(row),
            Err(dead_letter) => self.dead_letters.push(dead_letter),
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.dead_letters.len()
    }

    async fn stage(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<PendingMessages, sqlx::Error> {
        CustomBatch::stage(self, tx).await
    }

    fn flush_due(&self) -> bool {
        let joins = !self.stream.joins.is_empty() || !self.stream.joined_by.is_empty();
        joins && self.resolved_at.elapsed() >= RESOLVE_EVERY
    }

    async fn committed(&mut self, outputs: PendingMessages) {
        self.clear();
        self.resolved_at = std::time::Instant::now();
        if let Some(publisher) = &self.publisher {
            self.unpublished.extend(outputs);
            publisher
                .publish_pending(&mut self.unpublished, "stream outputs")
                .await;
        }
    }

    fn discard(&mut self) {
        self.clear();
    }

    fn tally(&self) -> (usize, usize) {
        (self.rows.len(), self.dead_letters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zero_groups_with_zero() {
        assert_eq!(
            KeyPart::of(&Value::Float(-0.0)),
            KeyPart::of(&Value::Float(0.0))
        );
        assert_ne!(
            KeyPart::of(&Value::Float(1.0)),
            KeyPart::of(&Value::Float(0.0))
        );
    }
}
