//! A sensor reading as it travels: the seed's payload `{guid, ts, temp}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The sensor's GUID.
    pub guid: String,
    /// When the reading was taken, in epoch seconds.
    pub ts: i64,
    /// Temperature, two decimals.
    pub temp: f64,
    /// When Pulseboard received it, in epoch microseconds; not part of the payload.
    #[serde(skip)]
    pub received_at: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("not a JSON reading {{guid, ts, temp}}: {0}")]
    Json(String),
    #[error("guid must be 1 to 36 characters, got {0}")]
    Guid(usize),
    #[error("temp must be a finite number between -999.99 and 999.99, got {0}")]
    Temp(f64),
    #[error("ts must be epoch seconds between 1970 and 2100, got {0}")]
    Timestamp(i64),
}

/// Latest epoch second accepted (2100-01-01): catches milliseconds sent as seconds.
const MAX_TS: i64 = 4_102_444_800;

impl Reading {
    pub fn new(guid: impl Into<String>, ts: i64, temp: f64) -> Self {
        Reading {
            guid: guid.into(),
            ts,
            temp,
            received_at: None,
        }
    }

    /// Stamps the reading with the time it reached Pulseboard.
    pub fn received_now(mut self) -> Self {
        self.received_at = Some(epoch_micros());
        self
    }

    /// Decodes and validates one JSON payload; what the `message` table could not hold is refused here.
    pub fn decode_json(payload: &[u8]) -> Result<Self, DecodeError> {
        let reading: Reading =
            serde_json::from_slice(payload).map_err(|e| DecodeError::Json(e.to_string()))?;
        reading.validate()?;
        Ok(reading)
    }

    pub fn validate(&self) -> Result<(), DecodeError> {
        let guid_len = self.guid.chars().count();
        if guid_len == 0 || guid_len > 36 {
            return Err(DecodeError::Guid(guid_len));
        }
        // numeric(5,2) holds up to 999.99.
        if !self.temp.is_finite() || self.temp.abs() > 999.99 {
            return Err(DecodeError::Temp(self.temp));
        }
        if !(0..=MAX_TS).contains(&self.ts) {
            return Err(DecodeError::Timestamp(self.ts));
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reading always serializes")
    }
}

/// The wall clock in epoch microseconds.
pub fn epoch_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_seed_payload() {
        let r = Reading::decode_json(
            br#"{"guid":"03e39872-e105-4be4-83c0-9ade818465dc","ts":1583292719,"temp":105.56}"#,
        )
        .expect("valid");
        assert_eq!(r.guid, "03e39872-e105-4be4-83c0-9ade818465dc");
        assert_eq!(r.ts, 1_583_292_719);
        assert_eq!(r.temp, 105.56);
        assert_eq!(Reading::decode_json(&r.to_json()), Ok(r));
    }

    #[test]
    fn refuses_what_the_table_cannot_hold() {
        assert!(matches!(
            Reading::decode_json(b"not json"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            Reading::decode_json(br#"{"guid":"a","ts":1}"#),
            Err(DecodeError::Json(_))
        ));
        assert_eq!(
            Reading::decode_json(br#"{"guid":"","ts":1,"temp":1}"#),
            Err(DecodeError::Guid(0))
        );
        assert_eq!(
            Reading::decode_json(br#"{"guid":"a","ts":1,"temp":1000.5}"#),
            Err(DecodeError::Temp(1000.5))
        );
        assert_eq!(
            Reading::decode_json(br#"{"guid":"a","ts":1583292719000,"temp":1}"#),
            Err(DecodeError::Timestamp(1_583_292_719_000))
        );
    }
}
