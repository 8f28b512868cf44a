//! The fast path as one burn operation: a backend extension (`#[backend_extension]`) whose
//! flex implementation runs a [`FastNet`] forward, and whose autodiff implementation registers
//! a backward step that runs the network's backward-to-input. The rest of a computation (the
//! objective on the logits, regularizers on the image) stays ordinary burn autodiff.
//!
//! The same operation runs a [`Span`] of the network for a layer tap: from the input to a
//! tapped value ([`fast_forward_to`]), or from a tapped value to the logits
//! ([`fast_forward_from`], whose backward pass stops at that value: Grad-CAM's gradient).

use crate::fast::{FastNet, Saved, Span};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use std::sync::Arc;

/// A shared handle on a fast network, passed through burn's dispatch: which span of it runs,
/// and whether its backward pass is guided backpropagation's (see [`FastNet::backward`]).
#[derive(Clone)]
pub struct NetRef {
    pub net: Arc<FastNet>,
    pub guided: bool,
    pub span: Span,
    /// Channels, height and width of the images (the operation's input is their value at
    /// `span.from`, its batch size the images').
    pub image: [usize; 3],
}

impl std::fmt::Debug for NetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetRef")
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// The value at `net.span.to` (logits `[N, classes]` for the whole network, else
    /// `[N, C, H, W]`) of a batch's value at `net.span.from` (`[N, C, H, W]`).
    fn netlens_fast_forward(x: FloatTensor<Self>, net: NetRef) -> FloatTensor<Self>;
}

fn read(x: &FlexTensor) -> (std::borrow::Cow<'_, [f32]>, [usize; 4]) {
    let dims = x.layout().shape().dims::<4>();
    let values = match x.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => x
            .clone()
            .into_data()
            .convert_dtype(DType::F32)
            .try_to_vec::<f32>()
            .unwrap_or_default()
            .into(),
    };
    (values, dims)
}

fn run(r: &NetRef, x: &FlexTensor, save: bool) -> (FlexTensor, Option<Saved>) {
    let (values, dims) = read(x);
    let [c, h, w] = r.image;
    let shape = [dims[0], c, h, w];
    // The caller checked the span and shapes (`fast_forward*`), so this cannot fail.
    let fail =
        |e: crate::fast::Unsupported| -> ! { panic!("fast path on an unchecked shape: {}", e.0) };
    let (out, saved) = r
        .net
        .forward_span(&values, shape, r.span, save)
        .unwrap_or_else(|e| fail(e));
    let data = if r.span.to == r.net.whole().to {
        let classes = out.len() / shape[0].max(1);
        TensorData::new(out, [shape[0], classes])
    } else {
        let s = r
            .net
            .value_shape(shape, r.span.to)
            .unwrap_or_else(|e| fail(e));
        TensorData::new(out, s)
    };
    (FlexTensor::from_data(data), saved)
}

impl FastOps for Flex {
    fn netlens_fast_forward(x: FloatTensor<Self>, net: NetRef) -> FloatTensor<Self> {
        run(&net, &x, false).0
    }
}

#[derive(Debug)]
struct FastBackward;

impl Backward<Flex, 1> for FastBackward {
    type State = (NetRef, Arc<Saved>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let Some(node) = parent else {
            return;
        };
        let (net, saved) = ops.state;
        let dlogits = match g.as_slice::<f32>() {
            Some(s) => s.to_vec(),
            None => g.into_data().try_to_vec::<f32>().unwrap_or_default(),
        };
        let dx = net.net.backward(&saved, &dlogits, net.guided);
        let shape = saved.grad_shape();
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
    }
}

impl<C: CheckpointStrategy> FastOps for Autodiff<Flex, C> {
    fn netlens_fast_forward(x: FloatTensor<Self>, net: NetRef) -> FloatTensor<Self> {
        match FastBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, saved) = run(&net, x.primitive(), true);
                let saved = saved.unwrap_or_else(|| unreachable!("save was requested"));
                prep.finish((net, Arc::new(saved)), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(&net, x.primitive(), false).0),
        }
    }
}

/// Logits of `x` through `net` as one differentiable burn operation, whose backward pass is
/// guided backpropagation's when `guided`. The caller has checked `net.check(x.dims())`.
pub fn fast_forward(net: &Arc<FastNet>, x: Tensor<4>, guided: bool) -> Tensor<2> {
    let [_, c, h, w] = x.dims();
    span_op(net, x, net.whole(), [c, h, w], guided)
}

/// The batch's value at fast value `to` (`[N, C, h, w]`), differentiable with respect to `x`
/// (whose backward runs from `to` back to the input). The caller has checked
/// `net.check_span(Span { from: 0, to }, x.dims())`.
pub fn fast_forward_to(net: &Arc<FastNet>, x: Tensor<4>, to: usize) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    span_op(net, x, Span { from: 0, to }, [c, h, w], false)
}

/// The logits computed from `a`, the value at fast value `from` of a batch of images of
/// `[C, H, W]` = `image`; differentiable with respect to `a` (the backward pass stops at
/// `from`). The caller has checked `net.check_span` for that span and that `a` has the
/// shape [`FastNet::value_shape`] gives.
pub fn fast_forward_from(
    net: &Arc<FastNet>,
    a: Tensor<4>,
    from: usize,
    image: [usize; 3],
) -> Tensor<2> {
    let span = Span {
        from,
        to: net.whole().to,
    };
    span_op(net, a, span, image, false)
}

fn span_op<const D: usize>(
    net: &Arc<FastNet>,
    x: Tensor<4>,
    span: Span,
    image: [usize; 3],
    guided: bool,
) -> Tensor<D> {
    let r = NetRef {
        net: net.clone(),
        guided,
        span,
        image,
    };
    Tensor::from_dispatch(<Dispatch as FastOps>::netlens_fast_forward(
        x.into_dispatch(),
        r,
    ))
}
