//! A node's attributes, read by name and checked: each of the type the operation expects
//! (when the file says which), flags 0 or 1, window sizes within bounds, and 2-D windows
//! (`kernel_shape`, `strides`, `dilations`, `pads`, `auto_pad`, `ceil_mode`).

use super::import::R;
use super::proto::{attribute_type as at, AttributeProto, TensorProto};
use crate::graph::{Pads, Window};

/// The largest kernel, stride, dilation or pad a window may have.
pub(super) const MAX_WINDOW: i64 = 1 << 24;

/// A node's attributes, with its name and op for messages.
pub(super) struct Attrs<'a> {
    pub(super) node: &'a str,
    pub(super) op: &'a str,
    pub(super) list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// The start of a message about this node.
    pub(super) fn at(&self) -> String {
        format!("node '{}' ({}): ", self.node, self.op)
    }

    /// Attribute `name`, checked to be of type `ty` when the file says which it is.
    fn get(&self, name: &str, ty: i32) -> R<Option<&'a AttributeProto>> {
        match self.list.iter().find(|x| x.name == name) {
            None => Ok(None),
            Some(x) if x.r#type == at::UNDEFINED || x.r#type == ty => Ok(Some(x)),
            Some(x) => Err(format!(
                "{}attribute '{name}' has type {}, expected {ty}",
                self.at(),
                x.r#type
            )),
        }
    }

    pub(super) fn int_opt(&self, name: &str) -> R<Option<i64>> {
        Ok(self.get(name, at::INT)?.map(|x| x.i))
    }

    pub(super) fn int(&self, name: &str, default: i64) -> R<i64> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    pub(super) fn flag(&self, name: &str, default: bool) -> R<bool> {
        match self.int_opt(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(format!(
                "{}attribute '{name}' is {v}, expected 0 or 1",
                self.at()
            )),
        }
    }

    /// A float attribute as the decimal it was written from (`0.2f32` reads as `0.2`).
    pub(super) fn float(&self, name: &str, default: f64) -> R<f64> {
        Ok(self.get(name, at::FLOAT)?.map_or(default, |x| decimal(x.f)))
    }

    pub(super) fn ints(&self, name: &str) -> R<Option<&'a [i64]>> {
        Ok(self.get(name, at::INTS)?.map(|x| x.ints.as_slice()))
    }

    pub(super) fn floats(&self, name: &str) -> R<Option<&'a [f32]>> {
        Ok(self.get(name, at::FLOATS)?.map(|x| x.floats.as_slice()))
    }

    pub(super) fn string(&self, name: &str) -> R<Option<String>> {
        match self.get(name, at::STRING)? {
            None => Ok(None),
            Some(x) => String::from_utf8(x.s.clone())
                .map(Some)
                .map_err(|_| format!("{}attribute '{name}' is not UTF-8 text", self.at())),
        }
    }

    pub(super) fn tensor(&self, name: &str) -> R<Option<&'a TensorProto>> {
        match self.get(name, at::TENSOR)? {
            None => Ok(None),
            Some(x) => {
                x.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| format!("{}attribute '{name}' holds no tensor", self.at()))
            }
        }
    }

    /// Two window sizes (`kernel_shape`, `strides`, `dilations`), each at least 1.
    fn pair(&self, name: &str, default: Option<[usize; 2]>) -> R<Option<[usize; 2]>> {
        let Some(v) = self.ints(name)? else {
            return Ok(default);
        };
        match v {
            [a, b] => Ok(Some([self.size(name, *a, 1)?, self.size(name, *b, 1)?])),
            _ => Err(format!(
                "{}{name} has {} values; netlens supports 2-D windows only (4-D inputs)",
                self.at(),
                v.len()
            )),
        }
    }

    fn size(&self, name: &str, v: i64, min: i64) -> R<usize> {
        if !(min..=MAX_WINDOW).contains(&v) {
            return Err(format!("{}{name} holds {v}", self.at()));
        }
        usize::try_from(v).map_err(|_| format!("{}{name} holds {v}", self.at()))
    }

    /// The window of a Conv (`kernel` from its weights when the attribute is absent) or a
    /// pooling node (`pool`: reads `ceil_mode`).
    pub(super) fn window(&self, kernel: Option<[usize; 2]>, pool: bool) -> R<Window> {
        let from_attr = self.pair("kernel_shape", None)?;
        let kernel = match (from_attr, kernel) {
            (Some(k), Some(w)) if k != w => {
                return Err(format!(
                    "{}kernel_shape {k:?} does not match the weights' {w:?}",
                    self.at()
                ))
            }
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => {
                return Err(format!(
                    "{}the kernel_shape attribute is missing",
                    self.at()
                ))
            }
        };
        let strides = self.pair("strides", Some([1, 1]))?.unwrap_or([1, 1]);
        let dilations = self.pair("dilations", Some([1, 1]))?.unwrap_or([1, 1]);
        let auto_pad = self.string("auto_pad")?;
        let pads = match auto_pad.as_deref() {
            None | Some("NOTSET") | Some("") => match self.ints("pads")? {
                None => Pads::Explicit([0; 4]),
                Some([t, l, b, r]) => Pads::Explicit([
                    self.size("pads", *t, 0)?,
                    self.size("pads", *l, 0)?,
                    self.size("pads", *b, 0)?,
                    self.size("pads", *r, 0)?,
                ]),
                Some(p) => {
                    return Err(format!(
                        "{}pads has {} values; netlens supports 2-D windows only (4-D inputs)",
                        self.at(),
                        p.len()
                    ))
                }
            },
            Some("VALID") => Pads::Explicit([0; 4]),
            Some("SAME_UPPER") => Pads::SameUpper,
            Some("SAME_LOWER") => Pads::SameLower,
            Some(other) => return Err(format!("{}auto_pad '{other}'", self.at())),
        };
        let ceil = pool && self.flag("ceil_mode", false)?;
        Ok(Window {
            kernel,
            strides,
            dilations,
            pads,
            ceil,
        })
    }
}

/// `f` as the shortest decimal that reads back as it, in double precision.
fn decimal(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}
