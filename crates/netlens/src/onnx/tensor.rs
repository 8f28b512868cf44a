//! A [`TensorProto`] (an initializer, a Constant's value) into a graph [`Const`]: its data
//! type, its dims against the bytes it really holds (overflow-safe, at most 2^31 elements,
//! checked before anything is allocated), and its elements, from `raw_data`, a typed field
//! or an external file, as `f32` or `i64`.

use super::external::External;
use super::import::R;
use super::proto::{data_location, data_type as dt, TensorProto};
use crate::graph::Const;
use half::{bf16, f16};

/// The most elements one tensor may hold.
const MAX_ELEMENTS: u64 = 1 << 31;

/// How a tensor's elements are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Elem {
    fn of(t: i32) -> Option<Self> {
        Some(match t {
            dt::FLOAT => Elem::F32,
            dt::FLOAT16 => Elem::F16,
            dt::BFLOAT16 => Elem::BF16,
            dt::DOUBLE => Elem::F64,
            dt::INT64 => Elem::I64,
            dt::INT32 => Elem::I32,
            dt::INT16 => Elem::I16,
            dt::INT8 => Elem::I8,
            dt::UINT8 => Elem::U8,
            dt::UINT16 => Elem::U16,
            dt::UINT32 => Elem::U32,
            dt::UINT64 => Elem::U64,
            dt::BOOL => Elem::Bool,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => 2,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
        }
    }
}

/// The elements of a tensor, before they become `f32` or `i64`.
enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A tensor (an initializer, a Constant's value) as a graph constant. `what` names it in
/// messages.
pub(super) fn tensor_const(t: &TensorProto, what: &str, ext: &mut External) -> R<Const> {
    if t.segment.is_some() {
        return Err(format!(
            "{what} is segmented, which netlens does not support"
        ));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut count: u64 = 1;
    for &d in &t.dims {
        let Ok(d) = u64::try_from(d) else {
            return Err(format!(
                "{what} has a negative dimension ({d} in {:?})",
                t.dims
            ));
        };
        count = count
            .checked_mul(d)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| format!("{what} declares dims {:?}, more than 2^31 elements", t.dims))?;
        shape.push(usize::try_from(d).map_err(|_| format!("{what}: dimension {d} too large"))?);
    }
    let elem = Elem::of(t.data_type).ok_or_else(|| {
        format!(
            "{what} has data type {}; netlens reads float (32, 16, bfloat16, 64-bit), integer \
             and bool tensors",
            dt::name(t.data_type)
        )
    })?;
    let count = usize::try_from(count).map_err(|_| format!("{what} is too large"))?;
    let nbytes = count
        .checked_mul(elem.bytes())
        .ok_or_else(|| format!("{what} is too large"))?;
    let data = match t.data_location {
        data_location::EXTERNAL => {
            let raw = ext.read(t, what, nbytes)?;
            from_raw(&raw, elem)
        }
        data_location::DEFAULT => {
            let typed = typed_len(t);
            if !t.raw_data.is_empty() || typed == 0 {
                if t.raw_data.len() != nbytes {
                    return Err(format!(
                        "{what} declares dims {:?} ({count} × {} bytes = {nbytes} bytes) but \
                         holds {} bytes of data",
                        t.dims,
                        elem.bytes(),
                        t.raw_data.len()
                    ));
                }
                from_raw(&t.raw_data, elem)
            } else {
                from_typed(t, elem, count, what)?
            }
        }
        other => return Err(format!("{what} has an unknown data location ({other})")),
    };
    Ok(match data {
        Data::F(v) => Const::float(shape, v),
        Data::I(v) => Const::int(shape, v),
    })
}

/// How many elements the typed fields hold in all.
fn typed_len(t: &TensorProto) -> usize {
    t.float_data.len()
        + t.int32_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len()
        + t.string_data.len()
}

/// `N` bytes from the front of `c` (zeros where it is shorter).
fn le<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(c) {
        *d = *s;
    }
    a
}

/// Little-endian elements (the length was checked).
fn from_raw(raw: &[u8], elem: Elem) -> Data {
    let ch = raw.chunks_exact(elem.bytes());
    match elem {
        Elem::F32 => Data::F(ch.map(|c| f32::from_le_bytes(le(c))).collect()),
        Elem::F64 => Data::F(ch.map(|c| f64::from_le_bytes(le(c)) as f32).collect()),
        Elem::F16 => Data::F(ch.map(|c| f16::from_le_bytes(le(c)).to_f32()).collect()),
        Elem::BF16 => Data::F(ch.map(|c| bf16::from_le_bytes(le(c)).to_f32()).collect()),
        Elem::I64 => Data::I(ch.map(|c| i64::from_le_bytes(le(c))).collect()),
        Elem::I32 => Data::I(ch.map(|c| i64::from(i32::from_le_bytes(le(c)))).collect()),
        Elem::I16 => Data::I(ch.map(|c| i64::from(i16::from_le_bytes(le(c)))).collect()),
        Elem::U16 => Data::I(ch.map(|c| i64::from(u16::from_le_bytes(le(c)))).collect()),
        Elem::U32 => Data::I(ch.map(|c| i64::from(u32::from_le_bytes(le(c)))).collect()),
        // Beyond i64: saturate (such values are never shapes or indices netlens can use).
        Elem::U64 => Data::I(
            ch.map(|c| i64::try_from(u64::from_le_bytes(le(c))).unwrap_or(i64::MAX))
                .collect(),
        ),
        Elem::I8 => Data::I(ch.map(|c| i64::from(i8::from_le_bytes(le(c)))).collect()),
        Elem::U8 => Data::I(
            ch.map(|c| i64::from(c.first().copied().unwrap_or(0)))
                .collect(),
        ),
        Elem::Bool => Data::I(
            ch.map(|c| i64::from(c.first().is_some_and(|&b| b != 0)))
                .collect(),
        ),
    }
}

/// Elements from the typed field that holds `elem` (the schema's choice per type).
fn from_typed(t: &TensorProto, elem: Elem, count: usize, what: &str) -> R<Data> {
    let (field, len) = match elem {
        Elem::F32 => ("float_data", t.float_data.len()),
        Elem::F64 => ("double_data", t.double_data.len()),
        Elem::I64 => ("int64_data", t.int64_data.len()),
        Elem::U32 | Elem::U64 => ("uint64_data", t.uint64_data.len()),
        _ => ("int32_data", t.int32_data.len()),
    };
    if len != count || typed_len(t) != count {
        return Err(format!(
            "{what} declares dims {:?} ({count} elements) but its {field} holds {len} (and its \
             typed fields {} in all)",
            t.dims,
            typed_len(t)
        ));
    }
    let i32s = || t.int32_data.iter().copied();
    Ok(match elem {
        Elem::F32 => Data::F(t.float_data.clone()),
        Elem::F64 => Data::F(t.double_data.iter().map(|&v| v as f32).collect()),
        // float16 and bfloat16 values are stored as their 16 bits in int32_data.
        Elem::F16 => Data::F(i32s().map(|v| f16::from_bits(v as u16).to_f32()).collect()),
        Elem::BF16 => Data::F(i32s().map(|v| bf16::from_bits(v as u16).to_f32()).collect()),
        Elem::I64 => Data::I(t.int64_data.clone()),
        Elem::U32 | Elem::U64 => Data::I(
            t.uint64_data
                .iter()
                .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
        ),
        Elem::Bool => Data::I(i32s().map(|v| i64::from(v != 0)).collect()),
        Elem::I32 | Elem::I16 | Elem::I8 | Elem::U8 | Elem::U16 => {
            Data::I(i32s().map(i64::from).collect())
        }
    })
}
