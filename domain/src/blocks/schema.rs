//! Builders that reproduce the JSON Schema pydantic emits for AutoGPT's
//! `BlockSchema` classes, after AutoGPT's own `$ref` inlining.
//!
//! AutoGPT declares every pin with `SchemaField`, which always adds a
//! `secret` flag and an `advanced` flag (forced to `false` for required
//! pins, defaulting to `true` for pins that have a default). Pydantic adds a
//! title derived from the field name unless the type is a referenced enum,
//! whose own class name then becomes the title. Defaults produced by a
//! `default_factory` are not written into the schema but still make the
//! pin optional.

use serde_json::{json, Map, Value};

/// How a pin gets its value when nothing is wired or set.
#[derive(Debug, Clone)]
enum Fallback {
    /// No default: the pin is listed under `required`.
    Required,
    /// A literal default, written to the schema as `default`.
    Literal(Value),
    /// A `default_factory`: optional, but pydantic leaves `default` out.
    Factory,
}

/// One pin (property) of a block's input or output schema.
#[derive(Debug, Clone)]
pub(super) struct Field {
    schema: Map<String, Value>,
    auto_title: bool,
    title: Option<&'static str>,
    description: Option<&'static str>,
    fallback: Fallback,
    advanced: Option<bool>,
    placeholder: Option<&'static str>,
    hidden: bool,
    /// Not declared through `SchemaField` (a `CredentialsField`), so
    /// without the `advanced`/`secret` flags.
    plain: bool,
}

impl Field {
    fn new(schema: Value) -> Self {
        Field {
            schema: match schema {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            auto_title: true,
            title: None,
            description: None,
            fallback: Fallback::Required,
            advanced: None,
            placeholder: None,
            hidden: false,
            plain: false,
        }
    }

    /// The pin's `description`.
    pub(super) fn desc(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    /// A literal default; makes the pin optional.
    pub(super) fn default(mut self, value: Value) -> Self {
        self.fallback = Fallback::Literal(value);
        self
    }

    /// A factory default (`default_factory=list` and friends).
    pub(super) fn factory(mut self) -> Self {
        self.fallback = Fallback::Factory;
        self
    }

    /// An explicit `advanced=` argument of `SchemaField`.
    pub(super) fn advanced(mut self, advanced: bool) -> Self {
        self.advanced = Some(advanced);
        self
    }

    /// The `placeholder` hint shown by the builder UI.
    pub(super) fn placeholder(mut self, text: &'static str) -> Self {
        self.placeholder = Some(text);
        self
    }

    /// Marks the pin `hidden` in the builder UI.
    pub(super) fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// An explicit title, overriding the one derived from the pin name.
    pub(super) fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }

    /// An extra JSON-schema key of the pin (`discriminator` and friends).
    pub(super) fn extra(mut self, key: &'static str, value: Value) -> Self {
        self.schema.insert(key.to_owned(), value);
        self
    }

    fn is_required(&self) -> bool {
        matches!(self.fallback, Fallback::Required)
    }

    fn to_json(&self, name: &str) -> Value {
        let mut out = self.schema.clone();
        match (self.title, self.auto_title) {
            (Some(title), _) => {
                out.insert("title".into(), json!(title));
            }
            (None, true) => {
                out.insert("title".into(), json!(python_title(name)));
            }
            (None, false) => {}
        }
        if let Some(text) = self.description {
            out.insert("description".into(), json!(text));
        }
        if let Fallback::Literal(value) = &self.fallback {
            out.insert("default".into(), value.clone());
        }
        if !self.plain {
            // Mirrors SchemaField: required pins can never be advanced.
            let advanced = !self.is_required() && self.advanced.unwrap_or(true);
            out.insert("advanced".into(), json!(advanced));
            out.insert("secret".into(), json!(false));
        }
        if let Some(text) = self.placeholder {
            out.insert("placeholder".into(), json!(text));
        }
        if self.hidden {
            out.insert("hidden".into(), json!(true));
        }
        Value::Object(out)
    }
}

/// Python's `str.title()` over the pin name with underscores as spaces,
/// which is how pydantic derives a field's default title.
pub(super) fn python_title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_cased = false;
    for c in name.chars() {
        let c = if c == '_' { ' ' } else { c };
        if c.is_alphabetic() {
            if prev_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_cased = true;
        } else {
            out.push(c);
            prev_cased = false;
        }
    }
    out
}

/// `typing.Any`: no type constraint at all.
pub(super) fn any() -> Field {
    Field::new(json!({}))
}

/// `str`.
pub(super) fn string() -> Field {
    Field::new(json!({"type": "string"}))
}

/// `int`.
pub(super) fn integer() -> Field {
    Field::new(json!({"type": "integer"}))
}

/// `float`.
pub(super) fn number() -> Field {
    Field::new(json!({"type": "number"}))
}

/// `bool`.
pub(super) fn boolean() -> Field {
    Field::new(json!({"type": "boolean"}))
}

/// `dict` / `dict[str, Any]`.
pub(super) fn dict() -> Field {
    Field::new(dict_type())
}

/// `list[...]` with the given item schema (`json!({})` for `list[Any]`).
pub(super) fn list(items: Value) -> Field {
    Field::new(json!({"type": "array", "items": items}))
}

/// A field of an arbitrary, already-built type schema.
pub(super) fn typed(schema: Value) -> Field {
    Field::new(schema)
}

/// `Optional[T]`: the type schema or `null`.
pub(super) fn nullable(schema: Value) -> Field {
    Field::new(json!({"anyOf": [schema, {"type": "null"}]}))
}

/// A union of the given type schemas, in declaration order.
pub(super) fn any_of(schemas: Value) -> Field {
    Field::new(json!({"anyOf": schemas}))
}

/// A Python `Enum` of string values. Pydantic emits it as a `$ref` that
/// AutoGPT inlines, so the enum's class name becomes the field title.
pub(super) fn enumeration(class_name: &'static str, values: &[&str]) -> Field {
    let mut field = Field::new(json!({"type": "string", "enum": values, "title": class_name}));
    field.auto_title = false;
    field
}

/// A `Literal[...]` of strings: an inline enum keeping the pin-name title.
pub(super) fn literal(values: &[&str]) -> Field {
    Field::new(json!({"type": "string", "enum": values}))
}

/// A credentials pin (`CredentialsField`): AutoGPT's generic
/// `CredentialsMetaInput[Literal[providers], Literal[types]]` model, inlined
/// with the `credentials_provider`/`credentials_types` lists the builder
/// reads to offer matching credentials. Being a model reference, the pin
/// keeps the model's own title, which pydantic spells from the generic
/// parameters' reprs (`<ProviderName.OPENAI: 'openai'>`).
pub(super) fn credentials(providers: &[&str], types: &[&str]) -> Field {
    let literal = |values: &[&str]| -> Value {
        match values {
            [one] => json!({"const": one, "type": "string"}),
            many => json!({"enum": many, "type": "string"}),
        }
    };
    let titled = |mut schema: Value, title: &str| {
        schema["title"] = json!(title);
        schema
    };
    let provider_reprs: Vec<String> =
        providers.iter().map(|p| format!("<ProviderName.{}: '{p}'>", p.to_uppercase())).collect();
    let type_reprs: Vec<String> = types.iter().map(|t| format!("'{t}'")).collect();
    let title =
        format!("CredentialsMetaInput[Literal[{}], Literal[{}]]", provider_reprs.join(", "), type_reprs.join(", "));
    let mut field = Field::new(json!({
        "properties": {
            "id": {"title": "Id", "type": "string"},
            "title": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "Title"},
            "provider": titled(literal(providers), "Provider"),
            "type": titled(literal(types), "Type"),
        },
        "required": ["id", "provider", "type"],
        "title": title,
        "type": "object",
        "credentials_provider": providers,
        "credentials_types": types,
    }));
    field.auto_title = false;
    field.plain = true;
    field
}

/// The type schema of `dict[str, Any]`.
pub(super) fn dict_type() -> Value {
    json!({"type": "object", "additionalProperties": true})
}

/// The type schema of `str`.
pub(super) fn string_type() -> Value {
    json!({"type": "string"})
}

/// The type schema of `int`.
pub(super) fn integer_type() -> Value {
    json!({"type": "integer"})
}

/// The input or output schema of one block, built pin by pin.
#[derive(Debug, Clone)]
pub(super) struct Schema {
    title: &'static str,
    fields: Vec<(&'static str, Field)>,
}

impl Schema {
    /// An empty input schema; pydantic titles it after the nested class.
    pub(super) fn input() -> Self {
        Schema { title: "Input", fields: Vec::new() }
    }

    /// An output schema starting with the implicit `error` pin every
    /// AutoGPT block output carries (`BlockSchemaOutput.error`).
    pub(super) fn output() -> Self {
        let error = string().desc("Error message if the operation failed").default(json!(""));
        Schema { title: "Output", fields: vec![("error", error)] }
    }

    /// Adds a pin, or redefines an inherited one in place (as a pydantic
    /// subclass does, keeping the parent's field position).
    pub(super) fn field(mut self, name: &'static str, field: Field) -> Self {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = field,
            None => self.fields.push((name, field)),
        }
        self
    }

    /// The JSON Schema object; `required` is omitted when empty, as pydantic does.
    pub(super) fn build(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, field) in &self.fields {
            properties.insert((*name).to_owned(), field.to_json(name));
            if field.is_required() {
                required.push(json!(name));
            }
        }
        let mut out = Map::new();
        out.insert("title".into(), json!(self.title));
        out.insert("type".into(), json!("object"));
        out.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            out.insert("required".into(), Value::Array(required));
        }
        Value::Object(out)
    }
}
