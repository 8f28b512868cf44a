//! The fast path as one burn operation: a backend extension (`#[backend_extension]`) whose
//! flex implementation runs a [`FastNet`] forward, and whose autodiff implementation registers
//! a backward step that runs the network's backward-to-input. The rest of a computation (the
//! objective on the logits, regularizers on the image) stays ordinary burn autodiff.

use crate::fast::{FastNet, Saved};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use std::sync::Arc;

/// A shared handle on a fast network, passed through burn's dispatch, and whether its
/// backward pass is guided backpropagation's (see [`FastNet::backward`]).
#[derive(Clone)]
pub struct NetRef(pub Arc<FastNet>, pub bool);

impl std::fmt::Debug for NetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetRef")
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// Logits `[N, classes]` of a `[N, C, H, W]` batch through `net`.
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

fn run(net: &FastNet, x: &FlexTensor, save: bool) -> (FlexTensor, Option<Saved>) {
    let (values, shape) = read(x);
    // The caller checked the shape (`fast_forward`), so this cannot fail.
    let (logits, saved) = net
        .forward(&values, shape, save)
        .unwrap_or_else(|e| panic!("fast path on an unchecked shape: {}", e.0));
    let classes = logits.len() / shape[0].max(1);
    (
        FlexTensor::from_data(TensorData::new(logits, [shape[0], classes])),
        saved,
    )
}

impl FastOps for Flex {
    fn netlens_fast_forward(x: FloatTensor<Self>, net: NetRef) -> FloatTensor<Self> {
        run(&net.0, &x, false).0
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
        let dx = net.0.backward(&saved, &dlogits, net.1);
        let shape = saved.input_shape();
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
                let (out, saved) = run(&net.0, x.primitive(), true);
                let saved = saved.unwrap_or_else(|| unreachable!("save was requested"));
                prep.finish((net, Arc::new(saved)), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(&net.0, x.primitive(), false).0),
        }
    }
}

/// Logits of `x` through `net` as one differentiable burn operation, whose backward pass is
/// guided backpropagation's when `guided`. The caller has checked `net.check(x.dims())`.
pub fn fast_forward(net: &Arc<FastNet>, x: Tensor<4>, guided: bool) -> Tensor<2> {
    let out =
        <Dispatch as FastOps>::netlens_fast_forward(x.into_dispatch(), NetRef(net.clone(), guided));
    Tensor::from_dispatch(out)
}
