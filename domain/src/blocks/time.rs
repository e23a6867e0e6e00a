//! Clock and timer blocks (`backend/blocks/time_blocks.py`).

use serde_json::{json, Map, Value};

use super::schema::{any, any_of, integer, integer_type, string, string_type, typed, Field, Schema};
use super::{Block, TEXT};

/// AutoGPT's `TimezoneLiteral`: the zones the format pickers offer.
const TIMEZONES: [&str; 38] = [
    "UTC",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Caracas",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Atlantic/South_Georgia",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Paris",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Tehran",
    "Asia/Dubai",
    "Asia/Kabul",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Yangon",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Australia/Eucla",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Noumea",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Tongatapu",
    "Pacific/Kiritimati",
    "Etc/GMT-12",
    "Etc/GMT+12",
];

pub(super) fn blocks() -> Vec<Block> {
    vec![current_time(), current_date(), current_date_and_time(), countdown_timer()]
}

/// The pair of pydantic models a clock block's `format_type` chooses
/// between, told apart by their `discriminator` pin. Each clock block has
/// its own pair (own class names, own default strftime pattern), and only
/// the time-bearing ISO models offer microseconds.
struct Formats {
    strftime_class: &'static str,
    pattern: &'static str,
    iso_class: &'static str,
    iso_micros: bool,
}

impl Formats {
    fn strftime_model(&self) -> Value {
        let mut props = Map::new();
        props.insert("discriminator".into(), discriminator("strftime"));
        props.insert("format".into(), json!({"type": "string", "title": "Format", "default": self.pattern}));
        insert_zone_props(&mut props);
        model(self.strftime_class, props)
    }

    fn iso_model(&self) -> Value {
        let mut props = Map::new();
        props.insert("discriminator".into(), discriminator("iso8601"));
        insert_zone_props(&mut props);
        if self.iso_micros {
            props.insert(
                "include_microseconds".into(),
                json!({"type": "boolean", "title": "Include Microseconds", "default": false}),
            );
        }
        model(self.iso_class, props)
    }

    /// The `format_type` pin: a tagged union defaulting to strftime.
    fn field(&self, description: &'static str) -> Field {
        let schema = json!({
            "oneOf": [self.strftime_model(), self.iso_model()],
            "discriminator": {
                "propertyName": "discriminator",
                "mapping": {
                    "iso8601": format!("#/$defs/{}", self.iso_class),
                    "strftime": format!("#/$defs/{}", self.strftime_class),
                },
            },
        });
        let default = json!({
            "discriminator": "strftime",
            "format": self.pattern,
            "timezone": "UTC",
            "use_user_timezone": false,
        });
        typed(schema).desc(description).default(default)
    }
}

fn discriminator(tag: &str) -> Value {
    json!({"type": "string", "const": tag, "title": "Discriminator"})
}

fn insert_zone_props(props: &mut Map<String, Value>) {
    props.insert(
        "timezone".into(),
        json!({"type": "string", "enum": TIMEZONES.as_slice(), "title": "Timezone", "default": "UTC"}),
    );
    props
        .insert("use_user_timezone".into(), json!({"type": "boolean", "title": "Use User Timezone", "default": false}));
}

fn model(title: &str, properties: Map<String, Value>) -> Value {
    json!({
        "type": "object",
        "title": title,
        "properties": properties,
        "required": ["discriminator"],
    })
}

fn trigger(description: &'static str) -> Field {
    string().desc(description)
}

fn current_time() -> Block {
    let formats = Formats {
        strftime_class: "TimeStrftimeFormat",
        pattern: "%H:%M:%S",
        iso_class: "TimeISO8601Format",
        iso_micros: true,
    };
    let input = Schema::input()
        .field("trigger", trigger("Trigger any data to output the current time"))
        .field("format_type", formats.field("Format type for time output (strftime with custom format or ISO 8601)"));
    Block::new(
        "a892b8d9-3e4e-4e9c-9c1e-75f8efcf1bfa",
        "GetCurrentTimeBlock",
        "This block outputs the current time.",
        &[TEXT],
        input,
        Schema::output().field("time", string().desc("Current time in the specified format (default: %H:%M:%S)")),
    )
}

fn current_date() -> Block {
    let formats = Formats {
        strftime_class: "DateStrftimeFormat",
        pattern: "%Y-%m-%d",
        iso_class: "DateISO8601Format",
        iso_micros: false,
    };
    let input = Schema::input()
        .field("trigger", trigger("Trigger any data to output the current date"))
        .field(
            "offset",
            any_of(json!([integer_type(), string_type()]))
                .title("Days Offset")
                .desc("Offset in days from the current date")
                .default(json!(0)),
        )
        .field("format_type", formats.field("Format type for date output (strftime with custom format or ISO 8601)"));
    Block::new(
        "b29c1b50-5d0e-4d9f-8f9d-1b0e6fcbf0b1",
        "GetCurrentDateBlock",
        "This block outputs the current date with an optional offset.",
        &[TEXT],
        input,
        Schema::output().field("date", string().desc("Current date in the specified format (default: YYYY-MM-DD)")),
    )
}

fn current_date_and_time() -> Block {
    let formats = Formats {
        strftime_class: "StrftimeFormat",
        pattern: "%Y-%m-%d %H:%M:%S",
        iso_class: "ISO8601Format",
        iso_micros: true,
    };
    let input =
        Schema::input().field("trigger", trigger("Trigger any data to output the current date and time")).field(
            "format_type",
            formats.field("Format type for date and time output (strftime with custom format or ISO 8601/RFC 3339)"),
        );
    Block::new(
        "716a67b3-6760-42e7-86dc-18645c6e00fc",
        "GetCurrentDateAndTimeBlock",
        "This block outputs the current date and time.",
        &[TEXT],
        input,
        Schema::output().field(
            "date_time",
            string().desc("Current date and time in the specified format (default: YYYY-MM-DD HH:MM:SS)"),
        ),
    )
}

fn countdown_timer() -> Block {
    let duration = |description: &'static str| {
        any_of(json!([integer_type(), string_type()])).desc(description).default(json!(0)).advanced(false)
    };
    let input = Schema::input()
        .field(
            "input_message",
            any().desc("Message to output after the timer finishes").default(json!("timer finished")).advanced(false),
        )
        .field("seconds", duration("Duration in seconds"))
        .field("minutes", duration("Duration in minutes"))
        .field("hours", duration("Duration in hours"))
        .field("days", duration("Duration in days"))
        .field(
            "repeat",
            integer()
                .desc("Number of times to repeat the timer")
                .default(json!(1))
                .extra("minimum", json!(1))
                .extra("maximum", json!(1000)),
        );
    Block::new(
        "d67a9c52-5e4e-11e2-bcfd-0800200c9a71",
        "CountdownTimerBlock",
        "This block triggers after a specified duration.",
        &[TEXT],
        input,
        Schema::output().field("output_message", any().desc("Message after the timer finishes")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_countdowns_repeat_is_bounded_in_its_schema_as_the_executor_bounds_it() {
        let block = super::super::find("d67a9c52-5e4e-11e2-bcfd-0800200c9a71").expect("CountdownTimerBlock");
        let repeat = &block.input_schema["properties"]["repeat"];
        assert_eq!((&repeat["minimum"], &repeat["maximum"]), (&json!(1), &json!(1000)), "{repeat}");
        assert_eq!(repeat["default"], 1);
    }
}
