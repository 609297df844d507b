//! Postgres' binary COPY format, for writing many rows in one stream.

use sqlx::PgConnection;

/// Rows encoded for `COPY ... FROM STDIN (FORMAT binary)`.
pub struct BinaryRows {
    data: Vec<u8>,
}

/// Microseconds from the Unix epoch to Postgres' epoch, 2000-01-01.
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

impl BinaryRows {
    pub fn with_capacity(rows: usize) -> Self {
        let mut data = Vec::with_capacity(19 + rows * 64);
        data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        data.extend_from_slice(&0_i32.to_be_bytes()); // flags
        data.extend_from_slice(&0_i32.to_be_bytes()); // header extension
        BinaryRows { data }
    }

    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.data.extend_from_slice(&fields.to_be_bytes());
        self
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.data
            .extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.data.extend_from_slice(value.as_bytes());
        self
    }

    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.data.extend_from_slice(&8_i32.to_be_bytes());
        self.data.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn int4(&mut self, value: i32) -> &mut Self {
        self.data.extend_from_slice(&4_i32.to_be_bytes());
        self.data.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.data.extend_from_slice(&1_i32.to_be_bytes());
        self.data.push(u8::from(value));
        self
    }

    /// A `numeric` with two decimals, given in hundredths.
    pub fn numeric2(&mut self, hundredths: i64) -> &mut Self {
        let length_at = self.data.len();
        self.data.extend_from_slice(&0_i32.to_be_bytes());
        encode_numeric2(&mut self.data, hundredths);
        let length = (self.data.len() - length_at - 4) as i32;
        self.data[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        self
    }

    /// The rows encoded since the last call (after the header, the first
    /// time), to send while more are encoded.
    fn take(&mut self) -> Vec<u8> {
        let capacity = self.data.capacity();
        std::mem::replace(&mut self.data, Vec::with_capacity(capacity))
    }

    /// A `timestamptz` given in Unix epoch microseconds, or NULL.
    pub fn timestamptz(&mut self, epoch_us: Option<i64>) -> &mut Self {
        match epoch_us {
            Some(us) => {
                self.data.extend_from_slice(&8_i32.to_be_bytes());
                self.data
                    .extend_from_slice(&(us - POSTGRES_EPOCH_US).to_be_bytes());
            }
            None => self.data.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
        self
    }

    /// The encoded stream, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.data.extend_from_slice(&(-1_i16).to_be_bytes());
        self.data
    }
}

/// Rows per COPY message: Postgres stores one part while the next is encoded.
const ROWS_PER_SEND: usize = 1_000;

/// Writes `rows` with `statement` (a `COPY ... FROM STDIN (FORMAT binary)`),
/// encoding each with `encode`, and returns how many rows Postgres stored.
pub async fn copy_rows<T>(
    conn: &mut PgConnection,
    statement: &str,
    rows: &[T],
    encode: impl Fn(&mut BinaryRows, &T),
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut encoded = BinaryRows::with_capacity(ROWS_PER_SEND.min(rows.len()));
    for part in rows.chunks(ROWS_PER_SEND) {
        for row in part {
            encode(&mut encoded, row);
        }
        copy.send(encoded.take()).await?;
    }
    copy.send(encoded.finish()).await?;
    copy.finish().await
}

/// Postgres' binary `numeric` for a value with two decimals given in hundredths.
pub fn numeric2(hundredths: i64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_numeric2(&mut out, hundredths);
    out
}

fn encode_numeric2(out: &mut Vec<u8>, hundredths: i64) {
    let negative = hundredths < 0;
    let mut magnitude = hundredths.unsigned_abs();
    // Base-10000 digits of the value, least significant first: the first
    // holds the two decimals. An i64 needs at most six.
    let mut digits = [0_i16; 6];
    digits[0] = (magnitude % 100) as i16 * 100;
    magnitude /= 100;
    let mut count = 1;
    while magnitude > 0 {
        digits[count] = (magnitude % 10_000) as i16;
        magnitude /= 10_000;
        count += 1;
    }
    let weight = count as i16 - 2;
    out.extend_from_slice(&(count as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&(if negative { 0x4000_u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&2_i16.to_be_bytes()); // display scale
    for digit in digits[..count].iter().rev() {
        out.extend_from_slice(&digit.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerics_encode_as_postgres_expects() {
        // 70.25: digits [70, 2500], weight 0, positive, scale 2.
        assert_eq!(numeric2(7025), [0, 2, 0, 0, 0, 0, 0, 2, 0, 70, 9, 196]);
        // 0.05: no integer digits, weight -1.
        assert_eq!(numeric2(5), [0, 1, 255, 255, 0, 0, 0, 2, 1, 244]);
        // -123.40: negative sign.
        assert_eq!(numeric2(-12340), [0, 2, 0, 0, 64, 0, 0, 2, 0, 123, 15, 160]);
        // 12345.67: two integer digits.
        assert_eq!(
            numeric2(1_234_567),
            [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 9, 41, 26, 44]
        );
    }

    #[test]
    fn numerics_carry_their_length_in_a_row() {
        let mut rows = BinaryRows::with_capacity(1);
        rows.row(1).numeric2(-i64::MAX);
        let data = rows.finish();
        let encoded = numeric2(-i64::MAX);
        assert_eq!(&data[21..25], (encoded.len() as i32).to_be_bytes());
        assert_eq!(&data[25..data.len() - 2], encoded);
    }

    #[test]
    fn a_stream_has_header_rows_and_trailer() {
        let mut rows = BinaryRows::with_capacity(1);
        rows.row(2).text("g").timestamptz(None);
        let data = rows.finish();
        assert!(data.starts_with(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0"));
        assert_eq!(
            &data[19..],
            [0, 2, 0, 0, 0, 1, b'g', 255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn integers_and_booleans_carry_their_length() {
        let mut rows = BinaryRows::with_capacity(1);
        rows.row(2).int4(-2).bool(true);
        let data = rows.finish();
        assert_eq!(
            &data[19..],
            [
                0, 2, 0, 0, 0, 4, 255, 255, 255, 254, 0, 0, 0, 1, 1, 255, 255
            ]
        );
    }
}
