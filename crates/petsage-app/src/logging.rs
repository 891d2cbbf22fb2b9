//! Logging: env_logger with `RUST_LOG` (default `info`), to stderr, as text
//! (env_logger's own lines) or as JSON, one object per line, for a log
//! pipeline. Whatever a client sends, a JSON line stays valid JSON: every
//! string goes through serde_json's escaping.

use std::io::{IsTerminal as _, Write as _};

use log::kv::{Key, Value, VisitSource};
use serde::ser::{Serialize, SerializeMap, Serializer};

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
    let terminal = std::io::stderr().is_terminal();
    match format {
        LogFormat::Json => {
            builder.format(|buf, record| {
                serde_json::to_writer(&mut *buf, &Line(record))?;
                writeln!(buf)
            });
        }
        // On a terminal, env_logger's own format, with coloured levels.
        LogFormat::Text if terminal => {}
        // Into a file or pipe, the same line without colours, written
        // directly: env_logger's styled format, then its pass stripping the
        // styles out again, made every access line dearer (figures in
        // docs/performance.md).
        LogFormat::Text => {
            builder.format(|buf, record| {
                writeln!(
                    buf,
                    "[{} {:<5} {}] {}",
                    buf.timestamp(),
                    record.level(),
                    record.target(),
                    record.args()
                )
            });
        }
    }
    if !terminal {
        // Our lines carry no styles to strip (JSON escapes control characters).
        builder.write_style(env_logger::WriteStyle::Always);
    }
    builder.init();
}

/// One record as one JSON object: `ts`, `level`, `target`, `msg`, then the
/// record's key-values (numbers stay numbers). Written straight into the
/// output, with no intermediate map or string.
struct Line<'a, 'r>(&'a log::Record<'r>);

impl Serialize for Line<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("ts", &Display(jiff::Timestamp::now()))?;
        map.serialize_entry("level", record.level().as_str())?;
        map.serialize_entry("target", record.target())?;
        map.serialize_entry("msg", &Display(record.args()))?;
        let mut fields = Fields { map, error: None };
        // A key-value that cannot be visited is left out; the line still goes out.
        let _ = record.key_values().visit(&mut fields);
        if let Some(err) = fields.error {
            return Err(err);
        }
        fields.map.end()
    }
}

/// Serializes a value through its `Display`, as a JSON string.
struct Display<T>(T);

impl<T: std::fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Writes each key-value of a record into the line's map.
struct Fields<M: SerializeMap> {
    map: M,
    error: Option<M::Error>,
}

impl<'kvs, M: SerializeMap> VisitSource<'kvs> for Fields<M> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        if self.error.is_none()
            && let Err(err) = self.map.serialize_entry(key.as_str(), &value)
        {
            self.error = Some(err);
        }
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
        let msg = "GET /a\"b\nc\u{0}\u{7f} \u{fffd}";
        let kvs: &[(&str, log::kv::Value<'_>)] = &[
            ("status", log::kv::Value::from(200u16)),
            ("duration_ms", log::kv::Value::from(0.25f64)),
            ("peer", log::kv::Value::from("1.2.3.4:5\"")),
        ];
        let args = format_args!("{msg}");
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("petsage::access")
            .key_values(&kvs)
            .build();
        let text = serde_json::to_string(&Line(&record)).expect("serializes");
        assert!(!text.contains('\n'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(back["msg"], msg);
        assert_eq!(back["level"], "INFO");
        assert_eq!(back["target"], "petsage::access");
        assert_eq!(back["status"], 200);
        assert_eq!(back["duration_ms"], 0.25);
        assert_eq!(back["peer"], "1.2.3.4:5\"");
        assert!(
            back["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
            "{back}"
        );
    }
}
