//! Enrichment joins of a stream of your own: each record joined with the
//! latest record (by event time) of another stream with the same value of the
//! `on` field, into `join_<stream>_<join>`.
//!
//! Records pass through `join_<stream>_<join>_pending`, in the flush's
//! transaction: those whose match is known move on at once; the others wait
//! there, in Postgres (so a restart loses nothing), until a flush of either
//! stream finds their match, or until the wait is over, when they are stored
//! unmatched (`_matched` false, the other stream's columns NULL).

use super::{Column, CustomStream, create_or_extend, quoted};
use crate::definitions::{Field, StreamDefinition};

/// One join, planned: its tables and the statements that fill them.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinPlan {
    pub name: String,
    /// The stream whose records are joined in.
    pub other: String,
    pub table: String,
    pub pending_table: String,
    other_table: String,
    /// How long a record waits for its match, in seconds.
    wait_s: f64,
    /// This stream's columns, then the other stream's (less `on`), prefixed with its name.
    columns: Vec<(String, Field)>,
    /// How many of `columns` are this stream's.
    own_columns: usize,
    on: String,
    /// Kafka topics each joined record is produced to.
    pub topics: Vec<String>,
    resolve_sql: String,
}

impl JoinPlan {
    pub(crate) fn plan(
        stream: &StreamDefinition,
        join: &crate::definitions::Join,
        definitions: &[StreamDefinition],
    ) -> anyhow::Result<Self> {
        let name = &stream.name;
        let context =
            |problem: String| anyhow::anyhow!("stream {name:?}: join {:?}: {problem}", join.name);
        let other = definitions
            .iter()
            .find(|d| d.name == join.stream)
            .ok_or_else(|| context(format!("no stream {:?} is defined", join.stream)))?;
        if other.name == stream.name {
            return Err(context(
                "a stream cannot join itself (its own record would be its match)".into(),
            ));
        }
        if other.pipeline.is_some() || !other.raw_rows {
            return Err(context(format!(
                "stream {:?} must be a stream of your own that keeps its raw rows, \
                 since the latest record per key is read from them",
                other.name
            )));
        }
        let own_on = stream.fields.iter().find(|f| f.name == join.on);
        let other_on = other.fields.iter().find(|f| f.name == join.on);
        match (own_on, other_on) {
            (Some(a), Some(b)) if a.kind == b.kind => {}
            (Some(_), Some(_)) => {
                return Err(context(format!(
                    "{:?} has another type in stream {:?}",
                    join.on, other.name
                )));
            }
            _ => {
                return Err(context(format!(
                    "both streams need the field {:?}",
                    join.on
                )));
            }
        }
        let wait = crate::definitions::duration(&join.wait).map_err(context)?;
        let mut columns: Vec<(String, Field)> = stream
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        for field in other.fields.iter().filter(|f| f.name != join.on) {
            let column = format!("{}_{}", other.name, field.name);
            if columns.iter().any(|(c, _)| *c == column) || column.starts_with('_') {
                return Err(context(format!(
                    "the column {column:?} for {:?}'s field {:?} clashes with a field of this stream",
                    other.name, field.name
                )));
            }
            columns.push((column, field.clone()));
        }
        let own_columns = stream.fields.len();
        let table = format!("join_{name}_{}", join.name);
        if table.len() + "_pending".len() > 63 {
            return Err(context(format!(
                "the names are too long for Postgres ({table}_pending is over 63 characters)"
            )));
        }
        let mut plan = JoinPlan {
            name: join.name.clone(),
            other: other.name.clone(),
            pending_table: format!("{table}_pending"),
            other_table: format!("{}{}", super::TABLE_PREFIX, other.name),
            table,
            wait_s: wait.as_secs_f64(),
            columns,
            own_columns,
            on: join.on.clone(),
            topics: stream
                .outputs
                .iter()
                .filter(|o| o.from == join.name)
                .map(|o| o.topic.clone())
                .collect(),
            resolve_sql: String::new(),
        };
        plan.resolve_sql = plan.resolve_sql();
        Ok(plan)
    }

    /// Moves every waiting record whose match is now known, or whose wait is
    /// over, into the join table. Rows another flush holds are skipped, not
    /// waited for; it moves them. With output topics, returns `(key, JSON)`
    /// of each joined record.
    fn resolve_sql(&self) -> String {
        let own: Vec<String> = self.columns[..self.own_columns]
            .iter()
            .map(|(c, _)| format!("p.{}", quoted(c)))
            .collect();
        let other: Vec<String> = self.columns[self.own_columns..]
            .iter()
            .map(|(column, field)| format!("o.{} AS {}", quoted(&field.name), quoted(column)))
            .collect();
        let names: Vec<String> = self.columns.iter().map(|(c, _)| quoted(c)).collect();
        let on = quoted(&self.on);
        let returning = if self.topics.is_empty() {
            String::new()
        } else {
            format!(" RETURNING json_build_array(t.{on})::text, row_to_json(t)::text")
        };
        let other_columns = if other.is_empty() {
            String::new()
        } else {
            format!(", {}", other.join(", "))
        };
        format!(
            "WITH ready AS (SELECT p.ctid AS pending_row, {own}, p._event_time, p._ingested_at{other_columns}, \
             o.{on} IS NOT NULL AS _matched FROM {pending} p \
             LEFT JOIN LATERAL (SELECT * FROM {other_table} o WHERE o.{on} = p.{on} \
             ORDER BY o._event_time DESC, o._stored_at DESC LIMIT 1) o ON true \
             WHERE o.{on} IS NOT NULL OR p._arrived_at <= now() - make_interval(secs => {wait}) \
             FOR UPDATE OF p SKIP LOCKED), \
             moved AS (DELETE FROM {pending} p USING ready WHERE p.ctid = ready.pending_row) \
             INSERT INTO {table} AS t ({names}, _event_time, _ingested_at, _matched) \
             SELECT {names}, _event_time, _ingested_at, _matched FROM ready{returning}",
            own = own.join(", "),
            pending = self.pending_table,
            other_table = self.other_table,
            wait = self.wait_s,
            table = self.table,
            names = names.join(", "),
        )
    }

    pub(crate) fn resolve(&self) -> &str {
        &self.resolve_sql
    }

    /// The index on the other stream's raw table that finds its latest record
    /// per key; the other stream creates it.
    pub(crate) fn latest_index_sql(&self) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {0}_latest_{1} ON {0} ({2}, _event_time DESC)",
            self.other_table,
            self.on,
            quoted(&self.on)
        )
    }

    /// Creates the pending and join tables (new fields become columns).
    pub(crate) async fn prepare(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        stream: &CustomStream,
    ) -> anyhow::Result<()> {
        let pending: Vec<Column> = stream
            .fields
            .iter()
            .map(|f| Column::of(&f.name, f, false))
            .collect();
        create_or_extend(
            tx,
            &stream.name,
            &self.pending_table,
            &pending,
            "_event_time timestamptz NOT NULL, _ingested_at timestamptz NOT NULL, \
             _arrived_at timestamptz NOT NULL DEFAULT now()",
        )
        .await?;
        let joined: Vec<Column> = self
            .columns
            .iter()
            .map(|(name, field)| Column::of(name, field, false))
            .collect();
        create_or_extend(
            tx,
            &stream.name,
            &self.table,
            &joined,
            "_event_time timestamptz NOT NULL, _ingested_at timestamptz NOT NULL, \
             _matched boolean NOT NULL, _stored_at timestamptz NOT NULL DEFAULT now()",
        )
        .await?;
        sqlx::query(&format!(
            "CREATE INDEX IF NOT EXISTS {0}_event_time ON {0} USING brin (_event_time)",
            self.table
        ))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
