//! Logging: env_logger with `RUST_LOG` (default `info`), to stderr, as text
//! (env_logger's own lines) or as JSON, one object per line, for a log
//! pipeline. Whatever a client sends, a JSON line stays valid JSON: every
//! string goes through serde_json's escaping.

use std::collections::BTreeMap;
use std::io::Write as _;

use log::kv::{Key, Value, VisitSource};
use serde::Serialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's text lines.
    Text,
    /// One JSON object per line: `ts`, `level`, `target`, `msg`, and the record's key-values.
    Json,
}

/// `text` or `json`.
pub(crate) fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".to_owned()),
    }
}

/// Installs the logger; call once, before anything logs.
pub(crate) fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let mut fields = Fields(BTreeMap::new());
            // A key-value that cannot be read is left out; the line still goes out.
            let _ = record.key_values().visit(&mut fields);
            let line = Line {
                ts: jiff::Timestamp::now().to_string(),
                level: record.level().as_str(),
                target: record.target(),
                msg: record.args().to_string(),
                fields: fields.0,
            };
            serde_json::to_writer(&mut *buf, &line)?;
            writeln!(buf)
        });
    }
    builder.init();
}

/// One JSON log line.
#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    level: &'static str,
    target: &'a str,
    msg: String,
    #[serde(flatten)]
    fields: BTreeMap<String, serde_json::Value>,
}

/// A record's key-values, as JSON values: numbers stay numbers.
struct Fields(BTreeMap<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            serde_json::Value::from(n)
        } else if let Some(n) = value.to_i64() {
            serde_json::Value::from(n)
        } else if let Some(x) = value.to_f64() {
            serde_json::Value::from(x)
        } else if let Some(b) = value.to_bool() {
            serde_json::Value::from(b)
        } else {
            serde_json::Value::from(value.to_string())
        };
        self.0.insert(key.as_str().to_owned(), json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_text_or_json_and_anything_else_is_explained() {
        assert_eq!(parse_log_format("json"), Ok(LogFormat::Json));
        assert_eq!(parse_log_format("text"), Ok(LogFormat::Text));
        assert_eq!(
            parse_log_format("xml"),
            Err("expected text or json".to_owned())
        );
    }

    #[test]
    fn a_line_with_hostile_text_is_one_valid_json_object() {
        let line = Line {
            ts: "2026-11-30T00:00:00Z".to_owned(),
            level: "INFO",
            target: "petsage::access",
            msg: "GET /a\"b\nc\u{0}\u{7f} \u{fffd}".to_owned(),
            fields: BTreeMap::from([("status".to_owned(), serde_json::Value::from(200))]),
        };
        let text = serde_json::to_string(&line).expect("serializes");
        assert!(!text.contains('\n'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(back["msg"], line.msg);
        assert_eq!(back["status"], 200);
    }
}
