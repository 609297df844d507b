//! A custom stream's records waiting for the next flush, and how a flush
//! writes them: raw rows by `UNNEST`, rollup deltas pre-aggregated in memory
//! and added to the stored rows, latency, and dead letters, in one transaction.

use super::{CustomStream, Row, Value, decode};
use crate::consumer::Sink;
use crate::operators::latency::Latencies;
use crate::operators::stats::Stats;
use crate::reading::epoch_micros;
use crate::store::{self, DeadLetter};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Records of one custom stream held for the next flush.
#[derive(Debug)]
pub struct CustomBatch {
    pub stream: Arc<CustomStream>,
    pub rows: Vec<Row>,
    pub dead_letters: Vec<DeadLetter>,
}

impl CustomBatch {
    pub fn new(stream: Arc<CustomStream>) -> Self {
        CustomBatch {
            stream,
            rows: Vec::new(),
            dead_letters: Vec::new(),
        }
    }

    /// Decodes one record into the batch, or keeps it as a dead letter.
    /// Returns the reason it was refused, if it was.
    pub fn add(
        &mut self,
        source: &str,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Option<String> {
        let record = self.decode_from(source, payload, position);
        let reason = record.as_ref().err().map(|d| d.reason.clone());
        Sink::hold(self, record);
        reason
    }

    /// One record as a row of the stream, or a dead letter with the reason.
    fn decode_from(
        &self,
        source: &str,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Result<Row, DeadLetter> {
        let stream = &self.stream;
        decode(&stream.fields, stream.event_time, payload, epoch_micros()).map_err(|reason| {
            DeadLetter {
                stream: Some(stream.name.clone()),
                source: source.into(),
                position: Some(position()),
                payload: payload.to_vec(),
                reason,
            }
        })
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.dead_letters.clear();
    }

    /// Writes the batch in `tx`.
    pub async fn stage(&self, tx: &mut Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
        if !self.rows.is_empty() {
            let stored_at_us: i64 =
                sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000000)::int8")
                    .fetch_one(&mut **tx)
                    .await?;
            if self.stream.raw_rows {
                self.insert_rows(tx).await?;
            }
            for rollup in 0..self.stream.rollups.len() {
                self.upsert_rollup(tx, rollup).await?;
            }
            self.store_latency(tx, stored_at_us).await?;
            let newest_ms = self.rows.iter().map(|r| r.event_ms).max();
            store::record_activity(tx, &self.stream.name, self.rows.len(), newest_ms).await?;
        }
        store::insert_dead_letters(tx, &self.dead_letters).await
    }

    async fn insert_rows(
        &self,
        tx: &mut Transaction<'static, Postgres>,
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
        let mut query = sqlx::query(&self.stream.insert_sql);
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

    async fn upsert_rollup(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        index: usize,
    ) -> Result<(), sqlx::Error> {
        let plan = &self.stream.rollups[index];
        let fields = &self.stream.fields;
        // Grouped by dimension values, then by grain and bucket. The order is
        // the same in every instance, so concurrent batches lock rows in the
        // same order. One key buffer serves every row: no allocation per row.
        let mut groups: BTreeMap<Vec<KeyPart<'_>>, BTreeMap<(usize, i64), Group>> = BTreeMap::new();
        let mut dims: Vec<KeyPart<'_>> = Vec::with_capacity(plan.group_by.len());
        for row in &self.rows {
            dims.clear();
            dims.extend(plan.group_by.iter().map(|&i| KeyPart::of(&row.values[i])));
            let buckets = match groups.get_mut(dims.as_slice()) {
                Some(buckets) => buckets,
                None => groups.entry(dims.clone()).or_default(),
            };
            for (g, (_, width)) in plan.grains.iter().enumerate() {
                let start = if *width == 0 {
                    0
                } else {
                    row.event_ms - row.event_ms.rem_euclid(*width)
                };
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
        let mut query = sqlx::query(&plan.upsert_sql)
            .bind(grain)
            .bind(starts)
            .bind(ends);
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
        query.execute(&mut **tx).await?;
        Ok(())
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

impl Sink for CustomBatch {
    type Staged = ();
    type Record = Result<Row, DeadLetter>;

    fn decode(
        &self,
        _topic: &str,
        _partition: i32,
        payload: &[u8],
        position: &dyn Fn() -> String,
    ) -> Self::Record {
        self.decode_from("kafka", payload, position)
    }

    fn hold(&mut self, record: Self::Record) {
        match record {
            Ok(row) => self.rows.push(row),
            Err(dead_letter) => self.dead_letters.push(dead_letter),
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.dead_letters.len()
    }

    async fn stage(&self, tx: &mut Transaction<'static, Postgres>) -> Result<(), sqlx::Error> {
        CustomBatch::stage(self, tx).await
    }

    async fn committed(&mut self, (): ()) {
        self.clear();
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
