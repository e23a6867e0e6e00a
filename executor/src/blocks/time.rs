//! Clocks and waiting (`backend/blocks/time_blocks.py`). The clock blocks
//! read the step's clock; the countdown is a wait the worker carries out.

use std::time::Duration;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, SecondsFormat};
use chrono_tz::Tz;
use serde_json::Value;

use super::{out, BlockContext, BlockResult, Input, Run, Step};

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("d67a9c52-5e4e-11e2-bcfd-0800200c9a71", countdown_timer),
    ("a892b8d9-3e4e-4e9c-9c1e-75f8efcf1bfa", current_time),
    ("b29c1b50-5d0e-4d9f-8f9d-1b0e6fcbf0b1", current_date),
    ("716a67b3-6760-42e7-86dc-18645c6e00fc", current_date_and_time),
];

/// A clock block's `format_type`: a strftime pattern, or ISO 8601; in the
/// user's timezone when told to use it and the user chose one, else in the
/// format's.
struct Format {
    strftime: Option<String>,
    zone: Tz,
    micros: bool,
}

impl Format {
    fn of(input: &Input, ctx: &BlockContext, default_pattern: &str) -> Result<Self, String> {
        let format = input.object("format_type");
        let text = |key: &str| format.get(key).and_then(Value::as_str);
        let use_user = format.get("use_user_timezone").and_then(Value::as_bool).unwrap_or(false);
        let zone_name = ctx.user_timezone.as_deref().filter(|_| use_user).or(text("timezone")).unwrap_or("UTC");
        let zone: Tz = zone_name.parse().map_err(|_| "unknown timezone".to_owned())?;
        let micros = format.get("include_microseconds").and_then(Value::as_bool).unwrap_or(false);
        let strftime = match text("discriminator").unwrap_or("strftime") {
            "iso8601" => None,
            _ => Some(text("format").unwrap_or(default_pattern).to_owned()),
        };
        Ok(Self { strftime, zone, micros })
    }

    /// Python's `isoformat()`: `+00:00`, not `Z`; microseconds when asked.
    fn iso(&self, at: DateTime<Tz>) -> String {
        at.to_rfc3339_opts(if self.micros { SecondsFormat::Micros } else { SecondsFormat::Secs }, false)
    }
}

/// A strftime pattern applied, or an error for a pattern chrono cannot read
/// (chrono would panic formatting it).
fn strftime(at: DateTime<Tz>, pattern: &str) -> Result<String, String> {
    if StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error)) {
        return Err(format!("invalid format: {pattern}"));
    }
    Ok(at.format(pattern).to_string())
}

fn local(ctx: &BlockContext, format: &Format) -> DateTime<Tz> {
    ctx.now.with_timezone(&format.zone)
}

/// The time; in ISO form the part after the date, `T`-prefixed.
fn current_time(input: &Input, ctx: &BlockContext) -> BlockResult {
    let format = Format::of(input, ctx, "%H:%M:%S")?;
    let now = local(ctx, &format);
    let time = match &format.strftime {
        Some(pattern) => strftime(now, pattern)?,
        None => {
            let iso = format.iso(now);
            format!("T{}", iso.split_once('T').map_or(iso.as_str(), |(_, t)| t))
        }
    };
    Ok(vec![out("time", time)])
}

/// The date `offset` days back (an offset that is no number counts as 0).
fn current_date(input: &Input, ctx: &BlockContext) -> BlockResult {
    let format = Format::of(input, ctx, "%Y-%m-%d")?;
    let offset = match input.get("offset") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    };
    let day = local(ctx, &format) - chrono::Duration::days(offset.clamp(-1_000_000, 1_000_000));
    let date = match &format.strftime {
        Some(pattern) => strftime(day, pattern)?,
        None => day.date_naive().to_string(),
    };
    Ok(vec![out("date", date)])
}

fn current_date_and_time(input: &Input, ctx: &BlockContext) -> BlockResult {
    let format = Format::of(input, ctx, "%Y-%m-%d %H:%M:%S")?;
    let now = local(ctx, &format);
    let date_time = match &format.strftime {
        Some(pattern) => strftime(now, pattern)?,
        None => format.iso(now),
    };
    Ok(vec![out("date_time", date_time)])
}

/// Most times a countdown repeats, and the longest it may wait in all (its
/// wait times its repeats), as AutoGPT bounds the block: beyond them one
/// node would build an endless list of steps or hold its run for ever.
const MAX_REPEAT: u64 = 1000;
const MAX_TOTAL_WAIT: u128 = 7 * 86_400;

/// A whole, non-negative number of a unit, given as a number or as text.
fn whole(input: &Input, field: &str) -> Result<u64, String> {
    let negative = || format!("{field} must be non-negative");
    match input.get(field) {
        None => Ok(0),
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => Err(negative()),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("invalid literal for int(): {n}")),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok_and(|n| n < 0) => Err(negative()),
        Some(Value::String(s)) => {
            s.trim().parse().map_err(|_| format!("invalid literal for int() with base 10: '{s}'"))
        }
        Some(other) => Err(format!("invalid {field}: {other}")),
    }
}

/// Wait the total time, then yield the message; `repeat` times.
fn countdown_timer(input: &Input, _: &BlockContext) -> BlockResult {
    // In u128 a sum of u64 fields times a bounded repeat cannot overflow.
    let mut wait: u128 = 0;
    for (field, unit) in [("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86_400)] {
        wait += u128::from(whole(input, field)?) * unit;
    }
    let repeat = if input.get("repeat").is_some() { whole(input, "repeat")? } else { 1 };
    if !(1..=MAX_REPEAT).contains(&repeat) {
        return Err(format!("Repeat must be between 1 and {MAX_REPEAT}, got {repeat}"));
    }
    let total = wait * u128::from(repeat);
    if total > MAX_TOTAL_WAIT {
        return Err(format!(
            "Total wait of {total} seconds ({wait} s x {repeat}) exceeds max {MAX_TOTAL_WAIT} seconds (7 days)"
        ));
    }
    let message = input.get("input_message").cloned().unwrap_or_else(|| Value::String("timer finished".into()));
    let wait = Duration::from_secs(u64::try_from(wait).unwrap_or(u64::MAX));
    let mut steps = Vec::new();
    for _ in 0..repeat {
        if !wait.is_zero() {
            steps.push(Step::Sleep(wait));
        }
        steps.push(out("output_message", message.clone()));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use chrono::{DateTime, Utc};
    use serde_json::{Map, Value};

    use crate::blocks::testing::{context, expect, yields};
    use crate::blocks::{run, BlockContext, Step};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn format_type(value: Value) -> Map<String, Value> {
        let mut input = Map::new();
        input.insert("format_type".into(), value);
        input
    }

    fn clock(block: &str, input: Map<String, Value>) -> Value {
        let ctx = BlockContext {
            user_id: Uuid::nil(),
            execution_id: Uuid::nil(),
            graph_id: Uuid::nil(),
            node_exec_id: Uuid::nil(),
            user_timezone: Some("Asia/Kolkata".into()),
            now: at("2026-12-03T09:05:03.250Z"),
            recorded_as: None,
        };
        match &run(block, &input, &ctx).steps[..] {
            [Step::Yield(_, value)] => value.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clocks_format_the_time_as_autogpt_does() {
        let (time, date, both) = (
            "a892b8d9-3e4e-4e9c-9c1e-75f8efcf1bfa",
            "b29c1b50-5d0e-4d9f-8f9d-1b0e6fcbf0b1",
            "716a67b3-6760-42e7-86dc-18645c6e00fc",
        );
        assert_eq!(clock(time, Map::new()), "09:05:03");
        assert_eq!(clock(time, format_type(json!({"discriminator": "strftime", "format": "%H:%M"}))), "09:05");
        assert_eq!(clock(time, format_type(json!({"discriminator": "iso8601", "timezone": "UTC"}))), "T09:05:03+00:00");
        let tokyo = json!({"discriminator": "iso8601", "timezone": "Asia/Tokyo", "include_microseconds": true});
        assert_eq!(clock(both, format_type(tokyo)), "2026-12-03T18:05:03.250000+09:00");
        assert_eq!(clock(both, Map::new()), "2026-12-03 09:05:03");
        let mut back = format_type(json!({"discriminator": "strftime", "format": "%m/%d/%Y"}));
        back.insert("offset".into(), json!("7"));
        assert_eq!(clock(date, back), "11/26/2026", "the offset goes back");
        let mut iso = format_type(json!({"discriminator": "iso8601"}));
        iso.insert("offset".into(), json!("x"));
        assert_eq!(clock(date, iso), "2026-12-03", "an offset that is no number is 0");
        let mine = json!({"discriminator": "strftime", "format": "%H:%M", "use_user_timezone": true});
        assert_eq!(clock(time, format_type(mine)), "14:35", "the user's timezone when told to use it");
        let broken = yields(both, json!({"format_type": {"discriminator": "strftime", "format": "%Q"}}));
        assert_eq!(broken[0].0, "error", "a bad pattern fails the node, not the worker");
    }

    #[test]
    fn the_countdown_yields_its_message_after_the_wait() {
        let block = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
        assert_eq!(yields(block, json!({"seconds": 1})), expect(json!([["output_message", "timer finished"]])));
        assert_eq!(
            yields(block, json!({"input_message": "Custom message"})),
            expect(json!([["output_message", "Custom message"]]))
        );
        assert_eq!(yields(block, json!({"seconds": "x"}))[0].0, "error");
        assert_eq!(yields(block, json!({"repeat": 2, "input_message": "m"})).len(), 2);
    }

    #[test]
    fn the_countdown_is_bounded_in_repeats_and_in_its_total_wait() {
        let block = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
        let error = |input| match yields(block, input).pop() {
            Some((pin, Value::String(text))) if pin == "error" => text,
            other => panic!("no error: {other:?}"),
        };
        assert_eq!(yields(block, json!({"repeat": 1000})).len(), 1000, "the most repeats");
        assert!(error(json!({"repeat": 1001})).contains("Repeat must be between 1 and 1000, got 1001"));
        assert!(error(json!({"repeat": 1_000_000_000_000_u64})).contains("Repeat must be between 1 and 1000"));
        assert!(error(json!({"repeat": 0})).contains("Repeat must be between 1 and 1000, got 0"));
        assert!(error(json!({"repeat": "-3"})).contains("repeat must be non-negative"));
        assert!(error(json!({"seconds": -1})).contains("seconds must be non-negative"));
        let week = yields(block, json!({"days": 7}));
        assert_eq!(week.len(), 1, "a week's wait is allowed: {week:?}");
        assert!(error(json!({"days": 7, "seconds": 1})).contains("exceeds max 604800 seconds"));
        assert!(error(json!({"days": 1, "repeat": 10})).contains("Total wait of 864000 seconds"), "wait x repeat");
        // These overflowed a u64 (a panic in a debug build, a short wait
        // after wrapping in a release one).
        assert!(error(json!({"minutes": u64::MAX})).contains("exceeds max"));
        assert!(error(json!({"days": "213503982334601"})).contains("exceeds max"));
        let steps = run(block, json!({"hours": 2, "repeat": 3}).as_object().unwrap(), &context());
        let waits: Vec<&Step> = steps.steps.iter().filter(|s| matches!(s, Step::Sleep(_))).collect();
        assert_eq!(waits, vec![&Step::Sleep(std::time::Duration::from_secs(7200)); 3]);
    }
}
