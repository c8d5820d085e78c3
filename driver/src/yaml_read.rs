//! Reading YAML into a JSON tree, with yaml-rust2's parser, as the driver
//! takes its templates and config files.
//!
//! One pass over the parser's events builds the tree:
//! - nesting deeper than [`MAX_YAML_DEPTH`] stops the pass at that line, so
//!   a deeply nested document is refused in time linear in its length;
//! - a repeated key in a mapping is refused (the API's strict decoding
//!   refuses it; a later value must not silently win);
//! - merge keys (`<<`) are applied by the YAML merge-key rule (as PyYAML
//!   and serde_yaml apply them): the mapping's own keys win, then the
//!   merged mappings in their order;
//! - an alias shares its anchor's node until the tree is written out, and
//!   the expansion is bounded by go-yaml's own rule (`excessive aliasing`),
//!   so a "billion laughs" document is refused within a few thousand nodes;
//! - only string keys, and plain scalars resolved as before this crate
//!   replaced serde_yaml (see [`resolve_plain`]).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use crate::input::MAX_YAML_DEPTH;

/// Reads every document of a YAML stream (`---` between documents); a
/// document with no content is `null`.
pub fn read_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    let mut builder = Builder::default();
    loop {
        let (event, mark) = parser.next_token().map_err(scan_error)?;
        match event {
            Event::StreamEnd => return Ok(documents),
            Event::DocumentStart => builder = Builder::default(),
            Event::DocumentEnd => {
                let root = builder.root.take().unwrap_or(Node::Scalar(Value::Null));
                documents.push(Expander::default().write(&root, At::Root, 0, None)?);
            }
            other => builder.event(other, mark)?,
        }
    }
}

/// Reads a stream that holds one document (or none: `null`).
pub fn read_document(text: &str) -> Result<Value, String> {
    let mut documents = read_documents(text)?;
    if documents.len() > 1 {
        return Err(format!(
            "the text holds {} YAML documents (separated by ---), expected one",
            documents.len()
        ));
    }
    Ok(documents.pop().unwrap_or(Value::Null))
}

/// The parser's error, with the nesting refusal worded as ours.
fn scan_error(err: ScanError) -> String {
    // The scanner's own limit on flow nesting (255 levels) can come first,
    // when it reads ahead: the same refusal.
    if err.info().contains("recursion limit") {
        too_deep(err.marker())
    } else {
        err.to_string()
    }
}

fn too_deep(mark: &Marker) -> String {
    format!(
        "nested more than {MAX_YAML_DEPTH} levels deep at line {} column {} (expected a Kubernetes object, which nests about a dozen levels)",
        mark.line(),
        mark.col() + 1
    )
}

/// A node as parsed: aliases share their anchor's node.
enum Node {
    Scalar(Value),
    Sequence(Vec<Node>),
    Mapping {
        entries: Vec<(String, Node)>,
        /// The values of `<<` keys, checked to be mappings or lists of
        /// mappings, applied when the tree is written out.
        merges: Vec<Node>,
    },
    /// An anchored node where it stands (`alias: None`) or where an alias
    /// repeats it.
    Shared {
        node: Rc<Node>,
        alias: Option<Marker>,
    },
}

impl Node {
    /// The node itself, through any sharing.
    fn target(&self) -> &Node {
        match self {
            Node::Shared { node, .. } => node.target(),
            other => other,
        }
    }
}

/// What a mapping waits for next.
enum KeyState {
    /// A key.
    Key,
    /// The value of this key.
    Value(String),
    /// The value of a `<<` key.
    Merge(Marker),
}

/// A collection being read.
enum Open {
    Sequence(Vec<Node>),
    Mapping {
        entries: Vec<(String, Node)>,
        keys: HashSet<String>,
        /// Whether a `<<` merge key was seen (a field may be named "<<").
        merge_key: bool,
        merges: Vec<Node>,
        state: KeyState,
    },
}

struct Frame {
    open: Open,
    anchor: usize,
    /// Where the collection sits, like `spec.containers[0]`.
    path: String,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes by the parser's anchor id, once complete.
    anchors: HashMap<usize, Rc<Node>>,
    root: Option<Node>,
}

impl Builder {
    /// Where the next node goes, for errors.
    fn path(&self) -> String {
        let Some(frame) = self.stack.last() else {
            return String::new();
        };
        match &frame.open {
            Open::Sequence(items) => format!("{}[{}]", frame.path, items.len()),
            Open::Mapping {
                state: KeyState::Value(key),
                ..
            } => join(&frame.path, key),
            Open::Mapping {
                state: KeyState::Merge(_),
                ..
            } => join(&frame.path, "<<"),
            Open::Mapping { .. } => frame.path.clone(),
        }
    }

    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                open: Open::Mapping {
                    state: KeyState::Key,
                    ..
                },
                ..
            })
        )
    }

    fn event(&mut self, event: Event, mark: Marker) -> Result<(), String> {
        let is_sequence = matches!(event, Event::SequenceStart(..));
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.awaiting_key() {
                    return self.key(&text, style, tag.as_ref(), anchor, mark);
                }
                let value = resolve(&text, style, tag.as_ref(), &mark)
                    .map_err(|err| format!("{}: {err}", place(&self.path())))?;
                self.complete(Node::Scalar(value), anchor)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if let Some(tag) = tag.as_ref().filter(|tag| !is_core(tag)) {
                    return Err(format!("{}: {}", place(&self.path()), unsupported_tag(tag)));
                }
                if self.awaiting_key() {
                    return Err(format!(
                        "{}: a key at line {} column {} is a {}, not a string (expected string keys, as in every Kubernetes object)",
                        place(&self.path()),
                        mark.line(),
                        mark.col() + 1,
                        if is_sequence { "sequence" } else { "mapping" }
                    ));
                }
                if self.stack.len() >= MAX_YAML_DEPTH {
                    return Err(too_deep(&mark));
                }
                let path = self.path();
                let open = if is_sequence {
                    Open::Sequence(Vec::new())
                } else {
                    Open::Mapping {
                        entries: Vec::new(),
                        keys: HashSet::new(),
                        merge_key: false,
                        merges: Vec::new(),
                        state: KeyState::Key,
                    }
                };
                self.stack.push(Frame { open, anchor, path });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(format!(
                        "unexpected end of a collection at line {}",
                        mark.line()
                    ));
                };
                let node = match frame.open {
                    Open::Sequence(items) => Node::Sequence(items),
                    Open::Mapping {
                        entries, merges, ..
                    } => Node::Mapping { entries, merges },
                };
                self.complete(node, frame.anchor)
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(format!(
                        "{}: the alias at line {} column {} refers to a node that contains it, or to an anchor of another document (expected an alias to a node complete before it in the same document: a tree, not a cycle)",
                        place(&self.path()),
                        mark.line(),
                        mark.col() + 1
                    ));
                };
                let shared = Node::Shared {
                    node,
                    alias: Some(mark),
                };
                if self.awaiting_key() {
                    return match shared.target() {
                        Node::Scalar(Value::String(key)) => {
                            let key = key.clone();
                            self.set_key(key, mark)
                        }
                        _ => Err(format!(
                            "{}: the key at line {} column {} is an alias to something other than a string (expected string keys)",
                            place(&self.path()),
                            mark.line(),
                            mark.col() + 1
                        )),
                    };
                }
                self.place(shared)
            }
            Event::Nothing | Event::StreamStart => Ok(()),
            Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => Ok(()),
        }
    }

    /// A scalar where a mapping expects a key.
    fn key(
        &mut self,
        text: &str,
        style: TScalarStyle,
        tag: Option<&Tag>,
        anchor: usize,
        mark: Marker,
    ) -> Result<(), String> {
        let path = self.path();
        // Only a plain << is a merge key (go-yaml and PyYAML agree): a
        // quoted one is a field named "<<", as the driver writes one.
        if text == "<<" && tag.is_none() && style == TScalarStyle::Plain {
            if let Some(Frame {
                open: Open::Mapping {
                    merge_key, state, ..
                },
                ..
            }) = self.stack.last_mut()
            {
                if std::mem::replace(merge_key, true) {
                    return Err(duplicate(&path, "<<", &mark));
                }
                *state = KeyState::Merge(mark);
            }
            return Ok(());
        }
        let key = match resolve(text, style, tag, &mark)
            .map_err(|err| format!("{}: {err}", place(&path)))?
        {
            Value::String(key) => key,
            other => {
                return Err(format!(
                    "{}: the key {other} at line {} column {} is not a string (expected string keys, as in every Kubernetes object; quote it)",
                    place(&path),
                    mark.line(),
                    mark.col() + 1
                ));
            }
        };
        if anchor > 0 {
            self.anchors
                .insert(anchor, Rc::new(Node::Scalar(Value::String(key.clone()))));
        }
        self.set_key(key, mark)
    }

    fn set_key(&mut self, key: String, mark: Marker) -> Result<(), String> {
        let path = self.path();
        if let Some(Frame {
            open: Open::Mapping { keys, state, .. },
            ..
        }) = self.stack.last_mut()
        {
            if !keys.insert(key.clone()) {
                return Err(duplicate(&path, &key, &mark));
            }
            *state = KeyState::Value(key);
        }
        Ok(())
    }

    /// A node is complete: keep it for its anchor, and put it in place.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), String> {
        if anchor == 0 {
            return self.place(node);
        }
        let node = Rc::new(node);
        self.anchors.insert(anchor, Rc::clone(&node));
        self.place(Node::Shared { node, alias: None })
    }

    fn place(&mut self, node: Node) -> Result<(), String> {
        let path = self.path();
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut frame.open {
            Open::Sequence(items) => items.push(node),
            Open::Mapping {
                entries,
                merges,
                state,
                ..
            } => match std::mem::replace(state, KeyState::Key) {
                KeyState::Value(key) => entries.push((key, node)),
                KeyState::Merge(mark) => {
                    check_merge(&node, &path, &mark)?;
                    merges.push(node);
                }
                // Keys are taken apart (Builder::key).
                KeyState::Key => {}
            },
        }
        Ok(())
    }
}

/// A merge key's value must be a mapping or a list of mappings.
fn check_merge(node: &Node, path: &str, mark: &Marker) -> Result<(), String> {
    let refuse = |found: &str| {
        Err(format!(
            "{}: the merge key (<<) at line {} column {} has {found} (expected a mapping, or a list of mappings, to merge)",
            place(path),
            mark.line(),
            mark.col() + 1
        ))
    };
    match node.target() {
        Node::Mapping { .. } => Ok(()),
        Node::Sequence(items) => {
            for item in items {
                match item.target() {
                    Node::Mapping { .. } => {}
                    Node::Sequence(_) => return refuse("a list holding a list"),
                    _ => return refuse("a list holding a scalar"),
                }
            }
            Ok(())
        }
        _ => refuse("a scalar"),
    }
}

fn duplicate(path: &str, key: &str, mark: &Marker) -> String {
    format!(
        "{}: duplicate key {key:?} at line {} column {} (each key may appear once in a mapping; remove the repeated one)",
        place(path),
        mark.line(),
        mark.col() + 1
    )
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn place(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        path
    }
}

/// Tags of the YAML core schema (`!!str`, `!!int`, `!!map`, ...).
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

fn is_core(tag: &Tag) -> bool {
    tag.handle == CORE_TAG_PREFIX
}

fn unsupported_tag(tag: &Tag) -> String {
    format!(
        "the tag {}{} is not supported (expected plain YAML values)",
        if tag.handle.is_empty() {
            "!"
        } else {
            &tag.handle
        },
        tag.suffix
    )
}

/// A scalar's value: a plain scalar resolved by [`resolve_plain`], a
/// quoted or block one a string, and the core tags `!!str`, `!!int`,
/// `!!float`, `!!bool`, `!!null` enforced.
fn resolve(
    text: &str,
    style: TScalarStyle,
    tag: Option<&Tag>,
    mark: &Marker,
) -> Result<Value, String> {
    let Some(tag) = tag else {
        return if style == TScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Ok(Value::String(text.to_string()))
        };
    };
    if !is_core(tag) {
        return Err(unsupported_tag(tag));
    }
    let wrong = |expected: &str| {
        Err(format!(
            "{text:?} tagged !!{} at line {} column {} is not {expected}",
            tag.suffix,
            mark.line(),
            mark.col() + 1
        ))
    };
    match tag.suffix.as_str() {
        "bool" => match parse_bool(text) {
            Some(flag) => Ok(Value::Bool(flag)),
            None => wrong("a boolean"),
        },
        "int" => match parse_int(text) {
            Some(number) => Ok(number),
            None => wrong("an integer"),
        },
        "float" => match parse_float(text) {
            Some(float) => finite(float, text),
            None => wrong("a float"),
        },
        "null" => match text {
            "" | "null" | "Null" | "NULL" | "~" => Ok(Value::Null),
            _ => wrong("null"),
        },
        // !!str, and the other core scalar tags (!!binary, !!timestamp)
        // taken as their text, as serde_yaml took them.
        _ => Ok(Value::String(text.to_string())),
    }
}

/// A plain scalar, resolved by the rules the driver has always read with
/// (serde_yaml's, the YAML 1.2 core schema with `0b` binary added):
/// `null`, `Null`, `NULL`, `~` and the empty scalar are null; `true`,
/// `True`, `TRUE` and the `false` forms are booleans; decimal integers
/// without a leading zero, `0x`, `0o` and `0b` integers are integers
/// (beyond 64 bits, a decimal one is a float, as go-yaml reads it);
/// decimal floats and `.inf`/`.nan` are floats (refused: JSON holds
/// neither); everything else is a string. YAML 1.1's `yes`, `on`, `0755`,
/// `1_000` and `12:30` stay strings.
pub fn resolve_plain(text: &str) -> Result<Value, String> {
    if matches!(text, "" | "null" | "Null" | "NULL" | "~") {
        return Ok(Value::Null);
    }
    if let Some(flag) = parse_bool(text) {
        return Ok(Value::Bool(flag));
    }
    if let Some(number) = parse_int(text) {
        return Ok(number);
    }
    if !leading_zero_digits(text)
        && let Some(float) = parse_float(text)
    {
        return finite(float, text);
    }
    Ok(Value::String(text.to_string()))
}

fn finite(float: f64, text: &str) -> Result<Value, String> {
    serde_json::Number::from_f64(float)
        .map(Value::Number)
        .ok_or_else(|| format!("{text} is not a finite number (expected one JSON can hold)"))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Leading zeros and digits only (`017`, `-00`): a string to YAML 1.2.
fn leading_zero_digits(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

/// An integer that fits 64 bits: `[+-]` then decimal, `0x`, `0o` or `0b`.
/// A decimal one too big for 64 bits is a float.
fn parse_int(text: &str) -> Option<Value> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // No second sign (`+-1`, `0x-1`): from_str_radix would take one.
    if unsigned.starts_with(['+', '-']) {
        return None;
    }
    let (radix, digits) = if let Some(rest) = unsigned.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = unsigned.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = unsigned.strip_prefix("0b") {
        (2, rest)
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    if radix == 10 && leading_zero_digits(unsigned) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok();
    match (negative, magnitude) {
        (false, Some(value)) => u64::try_from(value).ok().map(Value::from),
        (true, Some(value)) => i128::try_from(value)
            .ok()
            .and_then(|value| i64::try_from(-value).ok())
            .map(Value::from),
        (_, None) => None,
    }
}

/// A float: `.inf`, `-.inf`, `.nan` in three casings, or what Rust reads
/// as a finite float (`1.5`, `1e3`, `.5`, `1.`), an optional `+` first.
fn parse_float(text: &str) -> Option<f64> {
    let unsigned = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => text,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    unsigned
        .parse::<f64>()
        .ok()
        .filter(|float| float.is_finite())
}

/// Writes the parsed nodes out as JSON, expanding aliases within go-yaml's
/// bound.
#[derive(Default)]
struct Expander {
    /// Nodes written.
    decoded: u64,
    /// Nodes written through an alias.
    aliased: u64,
}

/// go-yaml v2's bounds on alias expansion (decode.go), which kubectl and
/// the API server read YAML with: up to 99 % of the decoded nodes (keys and
/// alias nodes included) may come from aliases in documents up to 400,000
/// nodes, falling to 10 % at 4,000,000; checked from 1,000 nodes and 100
/// aliased ones.
const ALIAS_RATIO_LOW: u64 = 400_000;
const ALIAS_RATIO_HIGH: u64 = 4_000_000;

fn allowed_alias_ratio(decoded: u64) -> f64 {
    if decoded <= ALIAS_RATIO_LOW {
        0.99
    } else if decoded >= ALIAS_RATIO_HIGH {
        0.10
    } else {
        let range = (ALIAS_RATIO_HIGH - ALIAS_RATIO_LOW) as f64;
        0.99 - 0.89 * ((decoded - ALIAS_RATIO_LOW) as f64 / range)
    }
}

/// Where a node sits in the tree, written out only for an error.
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root => f.write_str("the document"),
            At::Key(At::Root, key) => f.write_str(key),
            At::Key(parent, key) => write!(f, "{parent}.{key}"),
            At::Index(At::Root, index) => write!(f, "[{index}]"),
            At::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

impl Expander {
    fn count(&mut self, aliased: bool, at: At<'_>) -> Result<(), String> {
        self.decoded += 1;
        if aliased {
            self.aliased += 1;
        }
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err(format!(
                "{at}: the document expands too much through aliases ({} of its first {} nodes come from aliases; expected a document whose aliases repeat a little, as Kubernetes' YAML reader refuses excessive aliasing)",
                self.aliased, self.decoded
            ));
        }
        Ok(())
    }

    /// `node` at `at`, `depth` collections deep, as JSON; `alias` is the
    /// alias it is written through, if any.
    fn write(
        &mut self,
        node: &Node,
        at: At<'_>,
        depth: usize,
        alias: Option<&Marker>,
    ) -> Result<Value, String> {
        let through = |depth: usize| -> Result<(), String> {
            match alias {
                Some(mark) if depth >= MAX_YAML_DEPTH => Err(format!(
                    "{at}: nested more than {MAX_YAML_DEPTH} levels deep through the alias at line {} column {} (expected a Kubernetes object, which nests about a dozen levels)",
                    mark.line(),
                    mark.col() + 1
                )),
                _ => Ok(()),
            }
        };
        match node {
            Node::Shared { node, alias: here } => {
                if here.is_some() {
                    // The alias node itself, as go-yaml counts it.
                    self.count(alias.is_some(), at)?;
                }
                self.write(node, at, depth, here.as_ref().or(alias))
            }
            Node::Scalar(value) => {
                self.count(alias.is_some(), at)?;
                Ok(value.clone())
            }
            Node::Sequence(items) => {
                self.count(alias.is_some(), at)?;
                through(depth)?;
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    out.push(self.write(item, At::Index(&at, index), depth + 1, alias)?);
                }
                Ok(Value::Array(out))
            }
            Node::Mapping { entries, merges } => {
                self.count(alias.is_some(), at)?;
                through(depth)?;
                let mut map = Map::new();
                for (key, item) in entries {
                    // Keys are decoded nodes too, to go-yaml.
                    self.count(alias.is_some(), at)?;
                    let value = self.write(item, At::Key(&at, key), depth + 1, alias)?;
                    map.insert(key.clone(), value);
                }
                // The mapping's own keys win, then each merged mapping in
                // its order (the merge-key rule).
                for merge in merges {
                    let sources: Vec<&Node> = match merge.target() {
                        Node::Sequence(items) => items.iter().collect(),
                        _ => vec![merge],
                    };
                    for source in sources {
                        let merged = self.write(source, At::Key(&at, "<<"), depth, alias)?;
                        if let Value::Object(merged) = merged {
                            for (key, value) in merged {
                                map.entry(key).or_insert(value);
                            }
                        }
                    }
                }
                Ok(Value::Object(map))
            }
        }
    }
}
