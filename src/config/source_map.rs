//! Where each key and list item of the YAML file is, so that errors found after parsing
//! (an unknown key, a strategy naming a missing robot) can point at a line and column.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path such as `strategies[0].robots[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Segment>);

impl Path {
    /// The path one key deeper.
    pub fn key(&self, key: &str) -> Path {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    /// The path one list item deeper.
    pub fn index(&self, index: usize) -> Path {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column; 0 when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// The document's shape with the position of every key and item, and its scalars: what
/// the raw config is read from ([`super::tree`]).
#[derive(Debug, Default)]
pub struct SourceMap {
    pub(super) root: Option<Node>,
}

#[derive(Debug)]
pub(super) enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(Scalar),
}

/// A scalar as the YAML parser resolved it.
#[derive(Debug)]
pub(super) enum Scalar {
    Str(String),
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Null,
}

impl SourceMap {
    /// Reads the document from YAML text.
    pub fn parse(text: &str) -> Result<SourceMap, serde_saphyr::Error> {
        let root: Option<Node> = serde_saphyr::from_str(text)?;
        Ok(SourceMap { root })
    }

    /// The position of the deepest part of `path` that exists: the key for a mapping
    /// entry, the item for a list entry.
    pub fn position(&self, path: &Path) -> Position {
        let mut node = self.root.as_ref();
        let mut found = Position::default();
        for segment in &path.0 {
            let next = match (node, segment) {
                (Some(Node::Map(entries)), Segment::Key(key)) => entries
                    .iter()
                    .find(|(k, _)| k.value.0 == *key)
                    .map(|(k, v)| (position_of(k), &v.value)),
                (Some(Node::Seq(items)), Segment::Index(index)) => items
                    .get(*index)
                    .map(|item| (position_of(item), &item.value)),
                _ => None,
            };
            match next {
                Some((position, child)) => {
                    found = position;
                    node = Some(child);
                }
                None => break,
            }
        }
        found
    }
}

impl SourceMap {
    /// The path of every mapping key in the document, in document order.
    pub fn keys(&self) -> Vec<Path> {
        fn walk(node: &Node, at: &Path, keys: &mut Vec<Path>) {
            match node {
                Node::Map(entries) => {
                    for (key, value) in entries {
                        let path = at.key(&key.value.0);
                        keys.push(path.clone());
                        walk(&value.value, &path, keys);
                    }
                }
                Node::Seq(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(&item.value, &at.index(index), keys);
                    }
                }
                Node::Scalar(_) => {}
            }
        }
        let mut keys = Vec::new();
        if let Some(root) = &self.root {
            walk(root, &Path::default(), &mut keys);
        }
        keys
    }
}

pub(super) fn position_of<T>(spanned: &Spanned<T>) -> Position {
    Position {
        line: spanned.referenced.line() as u32,
        column: spanned.referenced.column() as u32,
    }
}

/// A mapping key of any scalar type, as text.
#[derive(Debug)]
pub(super) struct Key(pub(super) String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::Str(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::I64(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::U64(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::F64(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar(Scalar::Null))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}
