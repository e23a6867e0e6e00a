//! Jinja templates as AutoGPT's `TextFormatter` renders them: a sandboxed
//! environment (a step budget instead of a timeout), undefined variables as
//! empty text, Python's methods on values (`.items()`, `.upper()`), values
//! printed as Python's `str()` prints them, optional HTML escaping, and the
//! `format` filter applying a printf pattern to a number.

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde_json::Map;

use crate::blocks::MAX_TEXT_BYTES;

/// Template steps one render may take: far beyond any sensible template,
/// and a bound on the rest (AutoGPT stops a render after 10 s).
const FUEL: u64 = 200_000;

fn environment(autoescape: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_auto_escape_callback(move |_| if autoescape { AutoEscape::Html } else { AutoEscape::None });
    env.set_formatter(|out, state, value| {
        let text = py_str(value);
        if state.auto_escape() == AutoEscape::None || value.is_safe() {
            out.write_str(&text)?;
        } else {
            out.write_str(&html_escape(&text))?;
        }
        Ok(())
    });
    env.add_filter("format", format_filter);
    env
}

/// Render `template` with `values` as its variables; a render whose text
/// would pass [`MAX_TEXT_BYTES`] stops there, an error. A template that
/// could build values without bound on the way (see [`bounded`]) is
/// rendered in a child process under memory and CPU limits, when this
/// process knows its renderer (the server always does).
pub fn render(template: &str, values: &Map<String, serde_json::Value>, autoescape: bool) -> Result<String, String> {
    if !bounded(template) {
        if let Some(rendered) = crate::sandbox::render(template, values, autoescape) {
            return rendered;
        }
    }
    render_here(template, values, autoescape)
}

/// Render in this process (see [`render`]).
pub(crate) fn render_here(
    template: &str,
    values: &Map<String, serde_json::Value>,
    autoescape: bool,
) -> Result<String, String> {
    let env = environment(autoescape);
    let compiled = env.template_from_str(template).map_err(|e| describe(&e))?;
    let mut rendered = Capped { text: Vec::new(), overflowed: false };
    let outcome = compiled.render_captured_to(Value::from_serialize(values), &mut rendered).map(drop);
    match outcome {
        Ok(()) => String::from_utf8(rendered.text).map_err(|e| e.to_string()),
        Err(_) if rendered.overflowed => Err(format!("Template output too large (max {MAX_TEXT_BYTES} bytes)")),
        Err(e) => Err(describe(&e)),
    }
}

/// Tags that cannot keep a value from one step for the next (`set`,
/// `with`, macros, namespaces would).
const PLAIN_TAGS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor", "break", "continue"];

/// Filters, taken without arguments, whose result is no longer than what
/// they are given, give or take a case change: stacked, they do not
/// multiply it (`string` and `list` would, each by a constant).
const PLAIN_FILTERS: &[&str] = &[
    "abs",
    "capitalize",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "round",
    "safe",
    "title",
    "trim",
    "upper",
];

/// Whether every value a render of `template` makes stays within the size
/// of its inputs and the template: variables, indexing, literals, `if` and
/// `for`, comparisons and arithmetic, and [`PLAIN_FILTERS`]; no call of
/// anything (no `(`), no operator that joins or repeats values (`~`, `+`,
/// `*`, `**`), no tag that keeps a value across steps. Fuel bounds the steps
/// and [`Capped`] the text, but neither what a step allocates: a doubling in
/// a loop over a namespace reaches gigabytes in 40 steps, and so do stacked
/// calls that each multiply their input by a constant. A template the lexer
/// refuses is bounded: it will not compile either.
pub(crate) fn bounded(template: &str) -> bool {
    use minijinja::machinery::{tokenize, Token, WhitespaceConfig};
    let mut previous: Option<Token<'_>> = None;
    for next in tokenize(template, false, Default::default(), WhitespaceConfig::default()) {
        let Ok((token, _)) = next else { return true };
        let plain = match (&previous, &token) {
            (_, Token::ParenOpen | Token::Plus | Token::Mul | Token::Pow | Token::Tilde) => false,
            (Some(Token::BlockStart), Token::Ident(name)) => PLAIN_TAGS.contains(name),
            (Some(Token::Pipe), Token::Ident(name)) => PLAIN_FILTERS.contains(name),
            _ => true,
        };
        if !plain {
            return false;
        }
        previous = Some(token);
    }
    true
}

/// A render's text, refusing to grow past [`MAX_TEXT_BYTES`]: fuel bounds a
/// render's steps, not what each step writes (a loop over a long literal).
struct Capped {
    text: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len().saturating_add(bytes.len()) > MAX_TEXT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn describe(e: &Error) -> String {
    match e.kind() {
        ErrorKind::OutOfFuel => "Template rendering timed out (expression too complex)".to_owned(),
        _ => e.detail().map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind())),
    }
}

/// AutoGPT's `format` filter: `value | format("%.2f")` is the pattern
/// applied to the value as a number; without a pattern, the value.
fn format_filter(value: Value, pattern: Option<String>) -> Result<Value, Error> {
    let Some(pattern) = pattern else { return Ok(value) };
    let number = f64::try_from(value.clone())
        .or_else(|_| value.as_str().unwrap_or("").trim().parse::<f64>())
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "format needs a number"))?;
    printf(&pattern, number)
        .map(Value::from)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "unsupported format"))
}

/// One `%[.N](f|d|e|s)` conversion, with text around it.
fn printf(pattern: &str, n: f64) -> Option<String> {
    let at = pattern.find('%')?;
    let rest = &pattern[at + 1..];
    let digits: String = rest.chars().skip_while(|c| *c == '.').take_while(char::is_ascii_digit).collect();
    let precision = rest.starts_with('.').then(|| digits.parse::<usize>().ok()).flatten();
    let spec_len = usize::from(rest.starts_with('.')) + if rest.starts_with('.') { digits.len() } else { 0 };
    let conversion = rest[spec_len..].chars().next()?;
    let body = match conversion {
        'f' => format!("{n:.*}", precision.unwrap_or(6)),
        'd' | 'i' => format!("{}", n.trunc() as i64),
        'e' => python_exponent(&format!("{n:.*e}", precision.unwrap_or(6))),
        's' => py_float(n),
        _ => return None,
    };
    Some(format!("{}{body}{}", &pattern[..at], &rest[spec_len + conversion.len_utf8()..]))
}

/// Rust writes `1.5e2`, Python `1.5e+02`.
fn python_exponent(rust: &str) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust.to_owned(),
    }
}

/// A float as Python's `repr` writes it.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        return python_exponent(&format!("{f:e}"));
    }
    if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A value as Python's `str()` prints it.
pub fn py_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        _ => py_repr(value),
    }
}

/// A value as Python's `repr()` prints it.
fn py_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => {
            if value.is_integer() {
                value.to_string()
            } else {
                f64::try_from(value.clone()).map(py_float).unwrap_or_else(|_| value.to_string())
            }
        }
        ValueKind::String => py_quote(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value.try_iter().map(|it| it.map(|v| py_repr(&v)).collect()).unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|keys| {
                    keys.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_repr(&k), py_repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// A string literal as Python quotes it: single quotes unless the text
/// holds one and no double quote.
fn py_quote(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Jinja's (markupsafe's) HTML escaping.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(template: &str, values: serde_json::Value) -> String {
        render(template, values.as_object().unwrap(), false).unwrap()
    }

    #[test]
    fn renders_as_autogpts_text_formatter() {
        assert_eq!(
            r("{{hello}}, {{ world }} {{name}}", json!({"name": "Alice", "hello": "Hello", "world": "World!"})),
            "Hello, World! Alice"
        );
        assert_eq!(
            r("{% for item in list %}{{ item }}{% endfor %}", json!({"list": ["Hello", " World!"]})),
            "Hello World!"
        );
        assert_eq!(r("{% set name = 'Alice' %}Hello, World! {{ name }}", json!({})), "Hello, World! Alice");
        assert_eq!(r("[{{ missing }}]", json!({})), "[]", "undefined is empty");
        assert_eq!(r("line\n", json!({})), "line", "one trailing newline is dropped");
    }

    #[test]
    fn values_print_as_python_prints_them() {
        assert_eq!(r("{{ v }}", json!({"v": ["a", 1, 1.5, true, null]})), "['a', 1, 1.5, True, None]");
        assert_eq!(r("{{ v }}", json!({"v": {"k": "it's"}})), "{'k': \"it's\"}");
        assert_eq!(r("{{ v }}", json!({"v": 15.0})), "15.0");
        assert_eq!(
            r("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", json!({"d": {"a": 1, "b": 2}})),
            "a=1;b=2;"
        );
        assert_eq!(r("{{ s.upper() }}", json!({"s": "abc"})), "ABC");
    }

    #[test]
    fn escaping_is_optional_and_the_format_filter_takes_a_printf_pattern() {
        let values = json!({"v": "<b>&'\""});
        assert_eq!(render("{{ v }}", values.as_object().unwrap(), true).unwrap(), "&lt;b&gt;&amp;&#39;&#34;");
        assert_eq!(r("{{ v }}", values), "<b>&'\"");
        assert_eq!(r("{{ x | format('%.2f') }}", json!({"x": 1.23456})), "1.23");
        assert_eq!(r("{{ x | format('%d items') }}", json!({"x": 4.0})), "4 items");
    }

    #[test]
    fn runaway_templates_and_syntax_errors_are_errors() {
        let err = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            &Map::new(),
            false,
        );
        assert!(err.is_err());
        assert!(render("{{ unclosed", &Map::new(), false).is_err());
    }

    #[test]
    fn a_render_stops_at_the_text_size_limit() {
        let values = json!({"s": "x".repeat(1 << 20)});
        let ten = render("{% for i in range(10) %}{{ s }}{% endfor %}", values.as_object().unwrap(), false);
        assert_eq!(ten.map(|t| t.len()), Ok(10 << 20), "exactly the most");
        let eleven = render("{% for i in range(11) %}{{ s }}{% endfor %}", values.as_object().unwrap(), false);
        assert_eq!(eleven, Err("Template output too large (max 10485760 bytes)".into()));
        let literal = format!("{{% for i in range(20) %}}{}{{% endfor %}}", "y".repeat(1 << 20));
        assert!(render(&literal, &Map::new(), false).is_err_and(|e| e.contains("too large")));
    }

    #[test]
    fn templates_that_can_only_copy_their_inputs_render_here_the_others_do_not() {
        for plain in [
            "Hello, {{ name }}!",
            "{% for k in d %}{{ k|upper }}={{ d[k]|trim }}{% endfor %}",
            "{% if x is not defined %}none{% elif x > 3 %}{{ x - 1 }}{% endif %}",
            "{{ '~ + * (' }} and ~ + * ( in the text",
            "{{ items|first }} {{ s|length }} {% for i in xs %}{{ loop.index }}{% endfor %}",
        ] {
            assert!(bounded(plain), "{plain}");
        }
        for growing in [
            "{{ a ~ b }}",
            "{{ a + b }}",
            "{{ 'x' * 100 }}",
            "{% set ns = namespace(s='x') %}{{ ns.s }}",
            "{% macro m(s) %}{{ s }}{% endmacro %}{{ m(x) }}",
            "{{ x|replace('a', x) }}",
            "{{ x.replace('a', x) }}",
            "{{ (x.replace)('a', x) }}",
            "{{ xs|join(x) }}",
            "{{ 1|format('%.2000000000f') }}",
            "{{ xs|map('urlencode')|list }}",
            "{{ range(1000)|string|list|string|list|length }}",
            "{{ xs|string }}",
            "{{ \"}}\" ~ x }}",
        ] {
            assert!(!bounded(growing), "{growing}");
        }
    }
}
