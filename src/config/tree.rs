//! The raw config read from the parsed document ([`SourceMap`]) rather than from the YAML
//! text a second time: serde's data model over the tree, with the position of the value
//! an error is about.
//!
//! Why not the YAML deserializer itself: the config's types are read once per start or
//! reload, and each type the YAML parser's deserializer is built for costs several
//! kilobytes of binary; read from the tree, they cost a fraction of that (issue 23 needed
//! the room). The YAML parser still reads the text, once, into the tree. The web
//! configuration and `migrate`'s input are read the same way ([`read_yaml`]; issue 24
//! needed the room).
//!
//! A plain scalar is typed by what asks for it, as YAML deserializers do: `mobile:
//! 13800000001` is a string to a string field. Its text is taken from the document, so
//! `0123` stays `0123`.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_saphyr::Spanned;

use super::source_map::{Key, Node, Scalar, position_of};
use super::{Position, SourceMap};

/// A value that could not be read as its type, and where it is.
#[derive(Debug)]
pub(super) struct TreeError {
    pub(super) message: String,
    pub(super) position: Option<Position>,
}

impl de::Error for TreeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        TreeError {
            message: message.to_string(),
            position: None,
        }
    }
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TreeError {}

impl TreeError {
    /// The error, placed at `position` unless a deeper value placed it already.
    fn at(mut self, position: Position) -> Self {
        self.position.get_or_insert(position);
        self
    }
}

/// Reads `T` from the document `map` parsed from `text`.
pub(super) fn read<'de, T: de::Deserialize<'de>>(
    map: &SourceMap,
    text: &str,
) -> Result<T, TreeError> {
    let null = Node::Scalar(Scalar::Null);
    let node = map.root.as_ref().unwrap_or(&null);
    T::deserialize(Value {
        node,
        position: Position { line: 1, column: 1 },
        text: None,
        source: text,
    })
}

/// Where the YAML parser's `error` is, and what it is in one line. Without the snippet of
/// the text: it could show an expanded secret.
pub(super) fn yaml_error(error: &serde_saphyr::Error) -> (Position, String) {
    let position = error
        .location()
        .map(|l| Position {
            line: l.line() as u32,
            column: l.column() as u32,
        })
        .unwrap_or_default();
    let message = error.without_snippet().to_string();
    let message = message.lines().next().unwrap_or("invalid YAML");
    // The position is said apart from the message.
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    (position, message.to_owned())
}

/// Reads `T` from the YAML `text` as `config.yaml` is read: parsed once into the tree,
/// then typed from it (this module), so that the binary holds one YAML deserializer whatever
/// it reads (the web configuration, `migrate`'s input). An error reads `line L, column
/// C: what is wrong`.
pub fn read_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let located = |position: Position, message: String| {
        format!(
            "line {}, column {}: {message}",
            position.line, position.column
        )
    };
    let map = SourceMap::parse(text).map_err(|e| {
        let (position, message) = yaml_error(&e);
        located(position, message)
    })?;
    read(&map, text).map_err(|e| located(e.position.unwrap_or_default(), e.message))
}

/// One value of the tree as a deserializer.
struct Value<'a> {
    node: &'a Node,
    position: Position,
    /// A plain scalar's text as written.
    text: Option<&'a str>,
    source: &'a str,
}

impl<'a> Value<'a> {
    fn of(spanned: &'a Spanned<Node>, source: &'a str) -> Self {
        let span = spanned.referenced.span();
        let text = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(offset, len)| source.get(offset as usize..(offset + len) as usize));
        Value {
            node: &spanned.value,
            position: position_of(spanned),
            text,
            source,
        }
    }
}

impl<'de> Deserializer<'de> for Value<'_> {
    type Error = TreeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let position = self.position;
        let visited = match self.node {
            Node::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
                source: self.source,
            }),
            Node::Seq(items) => visitor.visit_seq(Items {
                items: items.iter(),
                source: self.source,
            }),
            Node::Scalar(Scalar::Str(text)) => visitor.visit_str(text),
            Node::Scalar(Scalar::Bool(value)) => visitor.visit_bool(*value),
            Node::Scalar(Scalar::I64(value)) => visitor.visit_i64(*value),
            Node::Scalar(Scalar::U64(value)) => visitor.visit_u64(*value),
            Node::Scalar(Scalar::F64(value)) => visitor.visit_f64(*value),
            Node::Scalar(Scalar::Null) => visitor.visit_unit(),
        };
        visited.map_err(|e| e.at(position))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        let written = match self.node {
            Node::Scalar(Scalar::Bool(_) | Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_)) => {
                self.text
            }
            _ => None,
        };
        match written {
            Some(text) => visitor
                .visit_str(text.trim())
                .map_err(|e: TreeError| e.at(self.position)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node {
            Node::Scalar(Scalar::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node {
            // An empty value (`robots:` with nothing under it) is an empty mapping.
            Node::Scalar(Scalar::Null) => visitor
                .visit_map(Entries {
                    entries: [].iter(),
                    value: None,
                    source: self.source,
                })
                .map_err(|e: TreeError| e.at(self.position)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
        match self.node {
            Node::Scalar(Scalar::Null) => visitor
                .visit_seq(Items {
                    items: [].iter(),
                    source: self.source,
                })
                .map_err(|e: TreeError| e.at(self.position)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TreeError> {
        match self.node {
            Node::Scalar(Scalar::Str(variant)) => visitor
                .visit_enum(variant.as_str().into_deserializer())
                .map_err(|e: TreeError| e.at(self.position)),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct identifier ignored_any
    }
}

/// The entries of a mapping.
struct Entries<'a> {
    entries: std::slice::Iter<'a, (Spanned<Key>, Spanned<Node>)>,
    value: Option<&'a Spanned<Node>>,
    source: &'a str,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = TreeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TreeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let name: de::value::StrDeserializer<'_, TreeError> =
            key.value.0.as_str().into_deserializer();
        seed.deserialize(name)
            .map(Some)
            .map_err(|e| e.at(position_of(key)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TreeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(Value::of(value, self.source)),
            None => Err(de::Error::custom("a value without its key")),
        }
    }
}

/// The items of a list.
struct Items<'a> {
    items: std::slice::Iter<'a, Spanned<Node>>,
    source: &'a str,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = TreeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TreeError> {
        match self.items.next() {
            Some(item) => seed.deserialize(Value::of(item, self.source)).map(Some),
            None => Ok(None),
        }
    }
}
