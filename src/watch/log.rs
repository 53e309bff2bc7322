//! The watcher's log: one line per event on stderr, as text for a terminal or as JSON for a
//! log pipeline (`--log-format json`).

use std::io::Write;

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-07T21:00:00Z applied space=prod control_plane=... message`
    Text,
    /// One JSON object per line: `{"ts", "event", "message", ...fields}`.
    Json,
}

/// Where events are written.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub format: LogFormat,
}

impl Log {
    /// Writes one event: its name (`seen`, `applied`, `withheld`, `restarted`, `error`, ...),
    /// a sentence, and fields for the machine.
    pub fn event(&self, event: &str, message: &str, fields: &[(&str, &str)]) {
        let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let line = line(self.format, &ts, event, message, fields);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn line(
    format: LogFormat,
    ts: &str,
    event: &str,
    message: &str,
    fields: &[(&str, &str)],
) -> String {
    match format {
        LogFormat::Json => {
            let mut object = Map::new();
            object.insert("ts".into(), json!(ts));
            object.insert("event".into(), json!(event));
            object.insert("message".into(), json!(message));
            for (key, value) in fields {
                object.insert((*key).into(), json!(value));
            }
            Value::Object(object).to_string()
        }
        LogFormat::Text => {
            let mut line = format!("{ts} {event}");
            for (key, value) in fields {
                line.push_str(&format!(" {key}={value}"));
            }
            format!("{line}: {message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LogFormat, line};

    #[test]
    fn one_line_per_event_in_either_format() {
        let fields = [("space", "prod"), ("namespace", "mxp-a-system")];
        assert_eq!(
            line(
                LogFormat::Text,
                "T",
                "seen",
                "new \"control\" plane",
                &fields
            ),
            "T seen space=prod namespace=mxp-a-system: new \"control\" plane"
        );
        let json: serde_json::Value =
            serde_json::from_str(&line(LogFormat::Json, "T", "seen", "a\nb", &fields)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ts": "T", "event": "seen", "message": "a\nb",
                               "space": "prod", "namespace": "mxp-a-system"})
        );
    }
}
