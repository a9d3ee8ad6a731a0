//! Streaming JSON readers that keep only the fields a change map needs, in compact form,
//! counting every page and area against [`MAX_ITEMS`] before it is stored.
//!
//! No JSON value tree is built: a 256 MiB file would need gigabytes as
//! `serde_json::Value`. Numbers are kept as read ([`Num`]) so that negative numbers,
//! floats and strings can be refused later with the page and extent index in the message.
//! Keys are those of `docs/formats.md` §4.3 (`DiskChangeInfo {startOffset, length,
//! changedArea?[{start, length}]}` in camelCase or snake_case, `_typeName`, `_vimtype`,
//! `dynamicType`, `dynamicProperty`, `_value`) and §4.7 (`qemu-img map` entries
//! `{start, length, depth, present, zero, data, compressed, offset?}`).

use crate::limits::{MAX_ITEMS, MAX_TYPE_NAME_CHARS};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::cell::Cell;
use std::fmt;

/// Implements every scalar `visit_*` of a visitor as "remember what kind it was".
macro_rules! scalar_kinds {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($wrap(Kind::Boolean))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($wrap(Kind::Number))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($wrap(Kind::String))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Kind::Null))
        }
    };
}

/// What a JSON value was, when it was not what a field needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Boolean,
    Number,
    String,
    Null,
    Array,
    Object,
    Missing,
}

impl Kind {
    /// The kind as a noun phrase for messages ("a string").
    pub fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Null => "null",
            Kind::Array => "an array",
            Kind::Object => "an object",
            Kind::Missing => "missing",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts pages, areas and elements as they are read; refuses past [`MAX_ITEMS`].
#[derive(Default)]
pub(crate) struct Budget {
    used: Cell<usize>,
    exceeded: Cell<bool>,
}

impl Budget {
    /// Accounts for one more stored item.
    fn take<E: de::Error>(&self) -> Result<(), E> {
        let n = self.used.get() + 1;
        if n > MAX_ITEMS {
            self.exceeded.set(true);
            return Err(E::custom(format!(
                "more than {MAX_ITEMS} pages and areas (the limit of one change map)"
            )));
        }
        self.used.set(n);
        Ok(())
    }

    /// True once the limit was hit.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.get()
    }
}

/// A number as it appeared in the JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    /// A non-negative integer that fits 64 bits.
    U64(u64),
    /// A negative integer.
    Negative(i64),
    /// A fraction, an exponent, or an integer beyond 2^64 − 1 (serde_json reads those as
    /// floating point).
    Float(f64),
    /// Not a number at all: what it was.
    NotNumber(Kind),
}

/// A boolean as it appeared in the JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Flag {
    /// `true` or `false`.
    Bool(bool),
    /// Something else: what it was.
    NotBool(Kind),
}

/// The value of `_typeName` or `_vimtype`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TypeTag {
    /// `DiskChangeInfo` / `vim.VirtualMachine.DiskChangeInfo`.
    Info,
    /// `ArrayOfDiskChangeInfo`.
    ArrayOfInfo,
    /// `DiskChangeExtent` / `vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent`.
    Extent,
    /// Anything else (shortened for messages).
    Other(Box<str>),
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeTag::Info => f.write_str("DiskChangeInfo"),
            TypeTag::ArrayOfInfo => f.write_str("ArrayOfDiskChangeInfo"),
            TypeTag::Extent => f.write_str("DiskChangeExtent"),
            TypeTag::Other(s) => write!(f, "{s:?}"),
        }
    }
}

/// One JSON object at page level (a page, an `ArrayOfDiskChangeInfo`, a `qemu-img map`
/// entry or an ad hoc area).
#[derive(Debug, Default)]
pub(crate) struct RawObject {
    /// `_typeName`.
    pub type_name: Option<Box<TypeTag>>,
    /// `_vimtype`.
    pub vim_type: Option<Box<TypeTag>>,
    /// `dynamicType` or `dynamicProperty` was present.
    pub dynamic: bool,
    /// A snake_case page key (`start_offset`, `changed_area`) was present.
    pub snake: bool,
    /// A key of the QueryChangedDiskAreas *request* was present (`deviceKey`, `changeId`,
    /// `snapshot`).
    pub request: bool,
    /// A `qemu-img map` key was present (`depth`, `present`, `zero`, `data`, `compressed`,
    /// `offset`).
    pub qemu: bool,
    /// `startOffset` / `start_offset`.
    pub start_offset: Option<Num>,
    /// `length`.
    pub length: Option<Num>,
    /// `start`.
    pub start: Option<Num>,
    /// `data` (qemu).
    pub data: Option<Flag>,
    /// `zero` (qemu).
    pub zero: Option<Flag>,
    /// `changedArea` / `changed_area`.
    pub areas: Option<AreaList>,
    /// `_value`.
    pub value: Option<Box<[RawElement]>>,
}

impl RawObject {
    /// True when a page key (`startOffset`, `changedArea`, snake or camel) was present.
    pub fn has_page_keys(&self) -> bool {
        self.start_offset.is_some() || self.areas.is_some()
    }
}

/// The value of `changedArea`.
#[derive(Debug)]
pub(crate) enum AreaList {
    /// An array of extents.
    List(Vec<RawExtent>),
    /// `null`: no areas.
    Null,
    /// Something else: what it was.
    NotArray(Kind),
}

/// One element of `changedArea`.
#[derive(Debug, Default)]
pub(crate) struct RawExtent {
    /// `start`.
    pub start: Option<Num>,
    /// `length`.
    pub length: Option<Num>,
    /// `startOffset` (or `start_offset`) was present: the VDDK-sample bug.
    pub start_offset: bool,
    /// `_typeName` or `_vimtype`.
    pub type_tag: Option<TypeTag>,
    /// The element was not an object: what it was.
    pub not_object: Option<Kind>,
}

/// One element of a JSON array (top level or `_value`).
#[derive(Debug)]
pub(crate) enum RawElement {
    /// An object.
    Object(RawObject),
    /// An array of exactly two numbers.
    Pair(Num, Num),
    /// An array of another length.
    BadArray(usize),
    /// A scalar: what it was.
    Scalar(Kind),
}

/// One top-level JSON value.
#[derive(Debug)]
pub(crate) enum RawTop {
    /// An object.
    Object(RawObject),
    /// An array.
    Array(Vec<RawElement>),
    /// A scalar: what it was.
    Scalar(Kind),
}

/// Reads one top-level value.
pub(crate) struct TopSeed<'b>(pub &'b Budget);

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = RawTop;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawTop, D::Error> {
        d.deserialize_any(TopVisitor(self.0))
    }
}

struct TopVisitor<'b>(&'b Budget);

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = RawTop;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or array")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTop, A::Error> {
        read_object(map, self.0).map(RawTop::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawTop, A::Error> {
        read_elements(seq, self.0).map(RawTop::Array)
    }
    scalar_kinds!(RawTop::Scalar);
}

fn read_elements<'de, A: SeqAccess<'de>>(
    mut seq: A,
    budget: &Budget,
) -> Result<Vec<RawElement>, A::Error> {
    let mut out = Vec::new();
    while let Some(e) = seq.next_element_seed(ElementSeed(budget))? {
        out.push(e);
    }
    Ok(out)
}

struct ElementSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = RawElement;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawElement, D::Error> {
        self.0.take()?;
        d.deserialize_any(ElementVisitor(self.0))
    }
}

struct ElementVisitor<'b>(&'b Budget);

impl<'de> Visitor<'de> for ElementVisitor<'_> {
    type Value = RawElement;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a page object or a [start, length] pair")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawElement, A::Error> {
        read_object(map, self.0).map(RawElement::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawElement, A::Error> {
        let mut nums = [Num::NotNumber(Kind::Missing); 2];
        let mut n = 0usize;
        while let Some(v) = seq.next_element::<Num>()? {
            if let Some(slot) = nums.get_mut(n) {
                *slot = v;
            }
            n = n.saturating_add(1);
        }
        Ok(if n == 2 {
            RawElement::Pair(nums[0], nums[1])
        } else {
            RawElement::BadArray(n)
        })
    }
    scalar_kinds!(RawElement::Scalar);
}

/// The keys this crate reads; every other key is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    TypeName,
    VimType,
    Dynamic,
    StartOffset,
    StartOffsetSnake,
    Length,
    Start,
    ChangedArea,
    ChangedAreaSnake,
    Value,
    Data,
    Zero,
    QemuOther,
    Request,
    Other,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::TypeName => "_typeName",
            Key::VimType => "_vimtype",
            Key::Dynamic => "dynamicType/dynamicProperty",
            Key::StartOffset => "startOffset",
            Key::StartOffsetSnake => "start_offset",
            Key::Length => "length",
            Key::Start => "start",
            Key::ChangedArea => "changedArea",
            Key::ChangedAreaSnake => "changed_area",
            Key::Value => "_value",
            Key::Data => "data",
            Key::Zero => "zero",
            Key::QemuOther => "depth/present/compressed/offset",
            Key::Request => "deviceKey/changeId/snapshot",
            Key::Other => "other",
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "_typeName" => Key::TypeName,
                    "_vimtype" => Key::VimType,
                    "dynamicType" | "dynamicProperty" => Key::Dynamic,
                    "startOffset" => Key::StartOffset,
                    "start_offset" => Key::StartOffsetSnake,
                    "length" => Key::Length,
                    "start" => Key::Start,
                    "changedArea" => Key::ChangedArea,
                    "changed_area" => Key::ChangedAreaSnake,
                    "_value" => Key::Value,
                    "data" => Key::Data,
                    "zero" => Key::Zero,
                    "depth" | "present" | "compressed" | "offset" => Key::QemuOther,
                    "deviceKey" | "changeId" | "snapshot" => Key::Request,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Stores `value` in `slot`, refusing a key given twice (the two values could disagree).
fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: Key) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format!(
            "key `{}` appears twice in one object",
            key.name()
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn read_object<'de, A: MapAccess<'de>>(mut map: A, budget: &Budget) -> Result<RawObject, A::Error> {
    // The object itself is counted by the caller: an array element by `ElementSeed`, a
    // top-level value among the spans.
    let mut o = RawObject::default();
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::TypeName => {
                let t = map.next_value::<TypeTag>()?;
                set_once(&mut o.type_name, Box::new(t), key)?;
            }
            Key::VimType => {
                let t = map.next_value::<TypeTag>()?;
                set_once(&mut o.vim_type, Box::new(t), key)?;
            }
            Key::Dynamic => {
                o.dynamic = true;
                map.next_value::<IgnoredAny>()?;
            }
            Key::StartOffset | Key::StartOffsetSnake => {
                o.snake |= key == Key::StartOffsetSnake;
                let n = map.next_value::<Num>()?;
                set_once(&mut o.start_offset, n, key)?;
            }
            Key::Length => {
                let n = map.next_value::<Num>()?;
                set_once(&mut o.length, n, key)?;
            }
            Key::Start => {
                let n = map.next_value::<Num>()?;
                set_once(&mut o.start, n, key)?;
            }
            Key::ChangedArea | Key::ChangedAreaSnake => {
                o.snake |= key == Key::ChangedAreaSnake;
                let a = map.next_value_seed(AreaListSeed(budget))?;
                set_once(&mut o.areas, a, key)?;
            }
            Key::Value => {
                let v = map.next_value_seed(ValueSeed(budget))?;
                set_once(&mut o.value, v.into_boxed_slice(), key)?;
            }
            Key::Data => {
                o.qemu = true;
                let f = map.next_value::<Flag>()?;
                set_once(&mut o.data, f, key)?;
            }
            Key::Zero => {
                o.qemu = true;
                let f = map.next_value::<Flag>()?;
                set_once(&mut o.zero, f, key)?;
            }
            Key::QemuOther => {
                o.qemu = true;
                map.next_value::<IgnoredAny>()?;
            }
            Key::Request => {
                o.request = true;
                map.next_value::<IgnoredAny>()?;
            }
            Key::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(o)
}

/// Reads `_value`: an array of elements (anything else is kept as a one-element marker
/// the caller refuses).
struct ValueSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Vec<RawElement>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RawElement>, D::Error> {
        struct V<'b>(&'b Budget);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Vec<RawElement>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of DiskChangeInfo")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                read_elements(seq, self.0)
            }
        }
        d.deserialize_seq(V(self.0))
    }
}

struct AreaListSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for AreaListSeed<'_> {
    type Value = AreaList;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AreaList, D::Error> {
        d.deserialize_any(AreaListVisitor(self.0))
    }
}

struct AreaListVisitor<'b>(&'b Budget);

impl<'de> Visitor<'de> for AreaListVisitor<'_> {
    type Value = AreaList;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of DiskChangeExtent")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AreaList, A::Error> {
        let mut out = Vec::new();
        while let Some(e) = seq.next_element_seed(ExtentSeed(self.0))? {
            out.push(e);
        }
        Ok(AreaList::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AreaList, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(AreaList::NotArray(Kind::Object))
    }
    scalar_kinds!(scalar_area_list);
}

/// A `changedArea` that is a scalar: `null` (no areas), or something else.
fn scalar_area_list(kind: Kind) -> AreaList {
    match kind {
        Kind::Null => AreaList::Null,
        _ => AreaList::NotArray(kind),
    }
}

struct ExtentSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for ExtentSeed<'_> {
    type Value = RawExtent;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawExtent, D::Error> {
        self.0.take()?;
        d.deserialize_any(ExtentVisitor)
    }
}

struct ExtentVisitor;

fn not_object(kind: Kind) -> RawExtent {
    RawExtent {
        not_object: Some(kind),
        ..RawExtent::default()
    }
}

impl<'de> Visitor<'de> for ExtentVisitor {
    type Value = RawExtent;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DiskChangeExtent object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExtent, A::Error> {
        let mut e = RawExtent::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Start => {
                    let n = map.next_value::<Num>()?;
                    set_once(&mut e.start, n, key)?;
                }
                Key::Length => {
                    let n = map.next_value::<Num>()?;
                    set_once(&mut e.length, n, key)?;
                }
                Key::StartOffset | Key::StartOffsetSnake => {
                    e.start_offset = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::TypeName | Key::VimType => {
                    let t = map.next_value::<TypeTag>()?;
                    set_once(&mut e.type_tag, t, key)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawExtent, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not_object(Kind::Array))
    }
    scalar_kinds!(not_object);
}

/// A value read from any JSON value: what it makes of each kind of value it takes, and
/// `other(kind)` of every kind it does not (arrays and objects are skipped unread).
trait FromAny: Sized {
    /// What the value should be, for serde's messages.
    const EXPECTING: &'static str;
    /// A value of a kind it does not take.
    fn other(kind: Kind) -> Self;
    /// A boolean.
    fn bool(_: bool) -> Self {
        Self::other(Kind::Boolean)
    }
    /// A non-negative integer that fits 64 bits.
    fn u64(_: u64) -> Self {
        Self::other(Kind::Number)
    }
    /// A negative integer.
    fn i64(_: i64) -> Self {
        Self::other(Kind::Number)
    }
    /// Any other number.
    fn f64(_: f64) -> Self {
        Self::other(Kind::Number)
    }
    /// A string.
    fn str(_: &str) -> Self {
        Self::other(Kind::String)
    }
}

/// Reads a [`FromAny`] value.
struct AnyVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: FromAny> Visitor<'de> for AnyVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Ok(T::bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::u64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::i64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Ok(T::f64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::other(Kind::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::other(Kind::Array))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(T::other(Kind::Object))
    }
}

/// Deserializes a [`FromAny`] value from whatever JSON value comes.
fn from_any<'de, T: FromAny, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(AnyVisitor(std::marker::PhantomData))
}

impl FromAny for Num {
    const EXPECTING: &'static str = "a number";
    fn other(kind: Kind) -> Num {
        Num::NotNumber(kind)
    }
    fn u64(v: u64) -> Num {
        Num::U64(v)
    }
    fn i64(v: i64) -> Num {
        u64::try_from(v).map_or(Num::Negative(v), Num::U64)
    }
    fn f64(v: f64) -> Num {
        Num::Float(v)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        from_any(d)
    }
}

impl FromAny for Flag {
    const EXPECTING: &'static str = "a boolean";
    fn other(kind: Kind) -> Flag {
        Flag::NotBool(kind)
    }
    fn bool(v: bool) -> Flag {
        Flag::Bool(v)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        from_any(d)
    }
}

impl FromAny for TypeTag {
    const EXPECTING: &'static str = "a type name";
    /// What it was, in angle brackets (`<a number>`), where a type name would stand.
    fn other(kind: Kind) -> TypeTag {
        TypeTag::Other(format!("<{kind}>").into())
    }
    fn str(s: &str) -> TypeTag {
        match s {
            "DiskChangeInfo" | "vim.VirtualMachine.DiskChangeInfo" => TypeTag::Info,
            "ArrayOfDiskChangeInfo" => TypeTag::ArrayOfInfo,
            "DiskChangeExtent" | "vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent" => {
                TypeTag::Extent
            }
            other => TypeTag::Other(
                other
                    .chars()
                    .take(MAX_TYPE_NAME_CHARS)
                    .collect::<String>()
                    .into(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for TypeTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TypeTag, D::Error> {
        from_any(d)
    }
}
