//! Any bytes as one record of a stream with every field type and a sensor
//! reading: decoded or refused with a reason, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::custom::CustomStream;
use server::reading::Reading;
use std::sync::LazyLock;

const DEFINITION: &str = r#"
name = "fuzzed"
description = "Every field type"

[sources]
http_names = ["fuzzed"]

[event_time]
field = "at"
format = "rfc3339"

[[fields]]
name = "at"
type = "string"
role = "time"

[[fields]]
name = "place"
type = "string"
role = "dimension"
max_length = 12

[[fields]]
name = "count"
type = "integer"
role = "metric"

[[fields]]
name = "share"
type = "float"
role = "metric"
required = false

[[fields]]
name = "flag"
type = "boolean"
role = "dimension"
required = false
"#;

static STREAM: LazyLock<CustomStream> = LazyLock::new(|| {
    let definitions = server::definitions::parse_all(&[("fuzzed.toml".into(), DEFINITION.into())])
        .expect("the fuzz stream's definition is valid");
    CustomStream::plan(&definitions[0]).expect("the fuzz stream plans")
});

fuzz_target!(|data: &[u8]| {
    let stream = &*STREAM;
    let _ = server::custom::record::decode(&stream.fields, stream.event_time, data, 0);
    let _ = Reading::decode_json(data);
});
