//! Postgres' binary COPY format, for writing many rows in one stream.

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
        let encoded = numeric2(hundredths);
        self.data
            .extend_from_slice(&(encoded.len() as i32).to_be_bytes());
        self.data.extend_from_slice(&encoded);
        self
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

/// Postgres' binary `numeric` for a value with two decimals given in hundredths.
pub fn numeric2(hundredths: i64) -> Vec<u8> {
    let negative = hundredths < 0;
    let mut magnitude = hundredths.unsigned_abs();
    // Base-10000 digits of the value: the last one holds the two decimals.
    let fraction = (magnitude % 100) as i16 * 100;
    magnitude /= 100;
    let mut digits = Vec::new();
    while magnitude > 0 {
        digits.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    let weight = digits.len() as i16 - 1;
    digits.reverse();
    digits.push(fraction);
    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&(if negative { 0x4000_u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&2_i16.to_be_bytes()); // display scale
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    out
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
