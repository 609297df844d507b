//! A custom stream's JSON record, checked against its fields: each value of
//! the declared type (or absent when the field is optional), strings within
//! their length, and an event time that reads in the declared format.

use crate::definitions::{Field, FieldType, TimeFormat};
use crate::sales::parse_timestamp;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;

/// One field's value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Epoch microseconds.
    Time(i64),
}

/// The times Postgres can store: the years 1 to 9999, in epoch milliseconds.
const MIN_TIME_MS: i64 = -62_135_596_800_000;
const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// A decoded record: one value per field, in the definition's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub values: Vec<Value>,
    pub event_ms: i64,
    pub received_us: i64,
    /// Where it came from, for the windows' clocks: [`HTTP_SOURCE`], or a
    /// Kafka partition (see `CustomStream::source_of`).
    pub source: u32,
}

/// The source of every record that arrived over HTTP.
pub const HTTP_SOURCE: u32 = 0;

/// Decodes one JSON object. Fields the definition does not name are ignored.
pub fn decode(
    fields: &[Field],
    event_time: (usize, TimeFormat),
    payload: &[u8],
    received_us: i64,
) -> Result<Row, String> {
    let mut found: Vec<Option<Scalar<'_>>> = Vec::with_capacity(fields.len());
    found.resize_with(fields.len(), || None);
    let mut reader = serde_json::Deserializer::from_slice(payload);
    let read = DeserializeSeed::deserialize(
        Named {
            fields,
            found: &mut found,
        },
        &mut reader,
    )
    .and_then(|()| reader.end());
    if let Err(error) = read {
        // Read again, as a whole, only to say what is wrong.
        return Err(match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(serde_json::Value::Object(_)) => format!("not a record: {error}"),
            Ok(_) => "a record must be a JSON object".into(),
            Err(e) => format!("not JSON: {e}"),
        });
    }
    let mut values = Vec::with_capacity(fields.len());
    for (field, scalar) in fields.iter().zip(found) {
        values.push(value(field, scalar, payload)?);
    }
    let (index, format) = event_time;
    let event_ms = event_ms(&fields[index].name, &values[index], format)?;
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&event_ms) {
        return Err(format!(
            "event time {:?} is outside the years 1 to 9999",
            fields[index].name
        ));
    }
    Ok(Row {
        values,
        event_ms,
        received_us,
        source: HTTP_SOURCE,
    })
}

/// A named field's value as the JSON held it. Read without building a
/// tree, and without copying a string that has no escapes.
#[derive(Debug)]
enum Scalar<'de> {
    Null,
    Text(Cow<'de, str>),
    /// A negative integer (JSON's non-negative ones read as `Unsigned`).
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
    /// An object or an array: never a valid field value.
    Nested,
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Signed(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Unsigned(u))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(x))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Owned(text)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }
}

impl Scalar<'_> {
    fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::Signed(i) => Some(i),
            Scalar::Unsigned(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Signed(i) => Some(i as f64),
            Scalar::Unsigned(u) => Some(u as f64),
            Scalar::Float(x) => Some(x),
            _ => None,
        }
    }
}

/// Reads a JSON object keeping only the values of the named fields (the last
/// one when a key repeats), and skipping the rest without building them.
struct Named<'a, 'de> {
    fields: &'a [Field],
    found: &'a mut [Option<Scalar<'de>>],
}

impl<'de> DeserializeSeed<'de> for Named<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Named<'_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(index) = map.next_key_seed(FieldIndex(self.fields))? {
            match index {
                Some(i) => self.found[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key of the object: the index of the field it names, if any.
struct FieldIndex<'a>(&'a [Field]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        // As bytes: a key is compared with the names, not kept, so it need
        // not be checked as UTF-8 first.
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_bytes<E: serde::de::Error>(self, key: &[u8]) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|field| field.name.as_bytes() == key))
    }
}

/// The most of a wrong value an error message quotes.
const QUOTED_CHARS: usize = 80;

/// Checks one field's value against its declaration. `payload` is read
/// again, as a whole, only to quote a wrong value in the error.
fn value(field: &Field, scalar: Option<Scalar<'_>>, payload: &[u8]) -> Result<Value, String> {
    let name = &field.name;
    let scalar = match scalar {
        None | Some(Scalar::Null) if field.required => {
            return Err(format!("{name:?} is missing"));
        }
        None | Some(Scalar::Null) => return Ok(Value::Null),
        Some(scalar) => scalar,
    };
    let wrong = || {
        let shown = match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(record) => record
                .get(name)
                .map(ToString::to_string)
                .unwrap_or_default(),
            Err(_) => "a value nested too deep to read".into(),
        };
        // Enough of the value to recognise it; the record is kept whole.
        let shown: String = if shown.chars().count() > QUOTED_CHARS {
            shown.chars().take(QUOTED_CHARS).chain(['…']).collect()
        } else {
            shown
        };
        format!("{name:?} must be {}, got {shown}", expected(field.kind))
    };
    match field.kind {
        FieldType::String => {
            let Scalar::Text(text) = scalar else {
                return Err(wrong());
            };
            if text.contains('\0') {
                return Err(format!(
                    "{name:?} holds a NUL character, which text cannot store"
                ));
            }
            if let Some(limit) = field.max_length {
                let length = text.chars().count();
                if length > limit {
                    return Err(format!(
                        "{name:?} is {length} characters; at most {limit} are allowed"
                    ));
                }
            }
            Ok(Value::Text(text.into_owned()))
        }
        FieldType::Integer => scalar.as_i64().map(Value::Int).ok_or_else(wrong),
        FieldType::Float => scalar.as_f64().map(Value::Float).ok_or_else(wrong),
        FieldType::Boolean => match scalar {
            Scalar::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(wrong()),
        },
        FieldType::Timestamp => {
            let Scalar::Text(text) = scalar else {
                return Err(wrong());
            };
            let ms = parse_rfc3339(&text)
                .or_else(|| parse_timestamp(&text))
                .filter(|ms| (MIN_TIME_MS..=MAX_TIME_MS).contains(ms))
                .ok_or_else(wrong)?;
            Ok(Value::Time(ms * 1000))
        }
    }
}

fn expected(kind: FieldType) -> &'static str {
    match kind {
        FieldType::String => "a string",
        FieldType::Integer => "an integer",
        FieldType::Float => "a number",
        FieldType::Boolean => "true or false",
        FieldType::Timestamp => "a time such as \"2024-05-01T12:00:00Z\"",
    }
}

fn event_ms(name: &str, value: &Value, format: TimeFormat) -> Result<i64, String> {
    let read = match (format, value) {
        (TimeFormat::EpochSeconds, Value::Int(s)) => s.checked_mul(1000),
        (TimeFormat::EpochMillis, Value::Int(ms)) => Some(*ms),
        (_, Value::Time(us)) => Some(us / 1000),
        (TimeFormat::Rfc3339, Value::Text(text)) => parse_rfc3339(text),
        (TimeFormat::SqlTimestamp, Value::Text(text)) => parse_timestamp(text),
        _ => None,
    };
    read.ok_or_else(|| format!("event time {name:?} does not read as {format:?}"))
}

/// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`: epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let (local, offset_ms) = if let Some(local) = text.strip_suffix(['Z', 'z']) {
        (local, 0)
    } else {
        // The offset is the last '+' or '-' after the time's start ("T").
        let time_start = text.find(['T', 't', ' '])?;
        let sign_at = text[time_start..].rfind(['+', '-'])? + time_start;
        let (local, offset) = text.split_at(sign_at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        (local, sign * (hours * 3_600_000 + minutes * 60_000))
    };
    parse_timestamp(local).map(|ms| ms - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::Role;

    fn field(name: &str, kind: FieldType, required: bool) -> Field {
        Field {
            name: name.into(),
            kind,
            role: Role::Dimension,
            required,
            max_length: Some(5),
        }
    }

    fn fields() -> Vec<Field> {
        vec![
            field("at", FieldType::Integer, true),
            field("store", FieldType::String, true),
            field("amount", FieldType::Float, false),
            field("paid", FieldType::Boolean, false),
        ]
    }

    fn read(json: &str) -> Result<Row, String> {
        decode(&fields(), (0, TimeFormat::EpochMillis), json.as_bytes(), 7)
    }

    /// However deep a hostile record nests, reading it neither recurses
    /// without bound nor fails for a field the definition does not name:
    /// nesting in a named field or around the whole record is refused with
    /// a reason, in any other field it is skipped.
    #[test]
    fn deeply_nested_values_are_skipped_or_refused_with_a_reason() {
        for depth in [200, 1_000_000] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let skipped = read(&format!(r#"{{"at": 1, "store": "n", "extra": {nested}}}"#))
                .expect("an unnamed field is skipped");
            assert_eq!(skipped.values[1], Value::Text("n".into()));
            let error = read(&format!(r#"{{"at": 1, "store": {nested}}}"#)).expect_err("refused");
            assert!(
                error.starts_with(r#""store" must be a string, got "#),
                "{error}"
            );
            assert!(error.chars().count() < 200, "{error}");
            let error = read(&nested).expect_err("refused");
            assert!(error.contains("recursion limit"), "{error}");
        }
    }

    #[test]
    fn a_record_reads_into_typed_values() {
        let row = read(r#"{"at": 1700000000123, "store": "north", "amount": 3, "extra": [1]}"#)
            .expect("valid");
        assert_eq!(
            row.values,
            [
                Value::Int(1_700_000_000_123),
                Value::Text("north".into()),
                Value::Float(3.0),
                Value::Null
            ]
        );
        assert_eq!(row.event_ms, 1_700_000_000_123);
        assert_eq!(row.received_us, 7);
    }

    #[test]
    fn unnamed_keys_are_skipped_whatever_they_hold_and_a_repeated_key_keeps_its_last_value() {
        let row = read(
            r#"{"nested": {"at": 1, "deep": [{"store": "x"}]}, "at": 5, "store": "a\"b",
                "at": 6, "note": "\u00e9", "paid": true}"#,
        )
        .expect("valid");
        assert_eq!(
            row.values,
            [
                Value::Int(6),
                Value::Text("a\"b".into()),
                Value::Null,
                Value::Bool(true)
            ]
        );
        // Escaped key names still name their field.
        let row = read(r#"{"\u0061t": 9, "store": "s"}"#).expect("valid");
        assert_eq!(row.values[0], Value::Int(9));
        // Anything after the object is not a record.
        let error = read(r#"{"at": 1, "store": "s"} {}"#).expect_err("trailing");
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn each_kind_of_bad_record_says_what_is_wrong() {
        let cases = [
            ("[1, 2]", "must be a JSON object"),
            ("{broken", "not JSON"),
            (r#"{"store": "north"}"#, r#""at" is missing"#),
            (r#"{"at": 1, "store": null}"#, r#""store" is missing"#),
            (
                r#"{"at": "soon", "store": "n"}"#,
                r#""at" must be an integer"#,
            ),
            (r#"{"at": 1.5, "store": "n"}"#, r#""at" must be an integer"#),
            (r#"{"at": 1, "store": 5}"#, r#""store" must be a string"#),
            (
                r#"{"at": 1, "store": "n", "amount": "1"}"#,
                r#""amount" must be a number"#,
            ),
            (
                r#"{"at": 1, "store": "n", "paid": 1}"#,
                r#""paid" must be true or false"#,
            ),
            (r#"{"at": 1, "store": "northern"}"#, "at most 5 are allowed"),
            (r#"{"at": 1, "store": "n\u0000"}"#, "NUL character"),
            (
                r#"{"at": 9000000000000000000, "store": "n"}"#,
                "outside the years 1 to 9999",
            ),
        ];
        for (json, reason) in cases {
            let error = read(json).expect_err(json);
            assert!(error.contains(reason), "{json}: {error}");
        }
    }

    #[test]
    fn event_times_read_in_every_format() {
        let seconds = decode(
            &fields(),
            (0, TimeFormat::EpochSeconds),
            br#"{"at": 1700000000, "store": "n"}"#,
            0,
        )
        .expect("valid");
        assert_eq!(seconds.event_ms, 1_700_000_000_000);
        let text = vec![Field {
            max_length: None,
            ..field("at", FieldType::String, true)
        }];
        for (format, input, ms) in [
            (
                TimeFormat::Rfc3339,
                "2023-11-14T22:13:20Z",
                1_700_000_000_000,
            ),
            (
                TimeFormat::Rfc3339,
                "2023-11-14T23:13:20.5+01:00",
                1_700_000_000_500,
            ),
            (
                TimeFormat::Rfc3339,
                "2023-11-14T21:13:20-01:00",
                1_700_000_000_000,
            ),
            (
                TimeFormat::SqlTimestamp,
                "2023-11-14 22:13:20.000000",
                1_700_000_000_000,
            ),
        ] {
            let json = format!(r#"{{"at": "{input}"}}"#);
            let row = decode(&text, (0, format), json.as_bytes(), 0).expect(input);
            assert_eq!(row.event_ms, ms, "{input}");
        }
        let error = decode(
            &text,
            (0, TimeFormat::Rfc3339),
            br#"{"at": "yesterday"}"#,
            0,
        )
        .expect_err("not a time");
        assert!(error.contains("does not read as Rfc3339"), "{error}");
    }
}
