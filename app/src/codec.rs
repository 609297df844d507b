//! How server functions send their answers: JSON, read in the browser with
//! `serde_json::from_str`, the same reader that loads the page's hydrated
//! resources. With the stock JSON encoding (`from_slice`) the browser bundle
//! carries two decoders of every type a page loads.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{ContentType, Decodes, Encodes, Format, FormatType};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct JsonTextEncoding;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<leptos::server_fn::Bytes, Self::Error> {
        serde_json::to_vec(output).map(Into::into)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: leptos::server_fn::Bytes) -> Result<T, Self::Error> {
        // Invalid UTF-8 is reported as a JSON syntax error.
        let text = String::from_utf8_lossy(&bytes);
        serde_json::from_str(&text)
    }
}

/// Answers (and, where a server function takes JSON, arguments) as JSON text.
pub type JsonText = Post<JsonTextEncoding>;
