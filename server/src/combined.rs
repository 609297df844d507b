//! Several data-modifying statements sent as one:
//! `WITH s1 AS (…), s2 AS (…) SELECT …`.
//!
//! A batch updates summary rows that concurrent batches update too (a
//! sensor's statistics, its latency, its stream's activity), and each such
//! row stays locked until the batch commits. Sent as one statement just
//! before the commit, the summaries cost one round trip, and another batch
//! waits for them only as long as that statement and the commit take.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::{Arguments, Encode, Type};

/// Statements gathered to run as one. Each part is written on its own, with
/// parameters `$1`, `$2`, … (and no other `$`), and binds its values in that
/// order; parts must not change the same row twice.
#[derive(Default)]
pub struct Combined {
    parts: Vec<String>,
    selected: Vec<String>,
    arguments: PgArguments,
    error: Option<BoxDynError>,
}

/// Binds the parameters of the statement just added, in order.
pub struct Binder<'c> {
    combined: &'c mut Combined,
}

impl Binder<'_> {
    pub fn bind<'t, T>(self, value: T) -> Self
    where
        T: 't + Encode<'t, Postgres> + Type<Postgres>,
    {
        if let Err(error) = self.combined.arguments.add(value) {
            self.combined.error.get_or_insert(error);
        }
        self
    }
}

impl Combined {
    /// Adds a data-modifying statement (`INSERT`, `UPDATE`, `DELETE`).
    pub fn with(&mut self, statement: &str) -> Binder<'_> {
        let part = renumber(statement, self.arguments.len());
        self.parts.push(part);
        Binder { combined: self }
    }

    /// Adds an expression to the `SELECT` that follows the parts, for work
    /// that must run exactly once, such as a notification.
    pub fn select(&mut self, expression: &str) -> Binder<'_> {
        let expression = renumber(expression, self.arguments.len());
        self.selected.push(expression);
        Binder { combined: self }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.selected.is_empty()
    }

    /// The statement as sent.
    pub fn sql(&self) -> String {
        let query = match self.selected.is_empty() {
            true => "SELECT 1".to_string(),
            false => format!("SELECT {}", self.selected.join(", ")),
        };
        if self.parts.is_empty() {
            return query;
        }
        let parts: Vec<String> = (self.parts.iter().enumerate())
            .map(|(index, part)| format!("s{index} AS ({part})"))
            .collect();
        format!("WITH {}\n{query}", parts.join(",\n"))
    }

    /// Runs the whole; nothing when nothing was added.
    pub async fn execute<'e>(self, executor: impl sqlx::PgExecutor<'e>) -> Result<(), sqlx::Error> {
        if self.is_empty() {
            return Ok(());
        }
        if let Some(error) = self.error {
            return Err(sqlx::Error::Encode(error));
        }
        let sql = self.sql();
        sqlx::query_with(&sql, self.arguments)
            .execute(executor)
            .await?;
        Ok(())
    }
}

/// `statement` with each parameter `$n` numbered `$(n + offset)`.
fn renumber(statement: &str, offset: usize) -> String {
    let mut out = String::with_capacity(statement.len() + 8);
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut number = String::new();
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            number.push(digit);
        }
        match number.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&number),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_of_later_parts_follow_the_earlier_ones() {
        let mut combined = Combined::default();
        combined
            .with("INSERT INTO a SELECT * FROM unnest($1::int8[], $2::text[])")
            .bind(vec![1_i64])
            .bind(vec!["x"]);
        combined
            .with("INSERT INTO b VALUES ($1, $2, $1)")
            .bind(2_i64)
            .bind(3_i64);
        combined.select("pg_notify('c', $1)").bind("d");
        combined.select("pg_notify('c', $1)").bind("e");
        assert_eq!(
            combined.sql(),
            "WITH s0 AS (INSERT INTO a SELECT * FROM unnest($1::int8[], $2::text[])),\n\
             s1 AS (INSERT INTO b VALUES ($3, $4, $3))\n\
             SELECT pg_notify('c', $5), pg_notify('c', $6)"
        );
    }

    #[test]
    fn a_lone_select_is_sent_as_it_is() {
        let mut combined = Combined::default();
        assert!(combined.is_empty());
        combined.select("$1::int8").bind(1_i64);
        assert_eq!(combined.sql(), "SELECT $1::int8");
    }
}
