//! The Vision Transformer's fast path as one burn operation, as `fast_op.rs` runs the CNNs'
//! [`FastNet`](crate::fast::FastNet): a backend extension whose flex implementation runs a
//! [`VitNet`] forward and whose autodiff implementation registers a backward step running
//! its backward-to-input. Objectives on the logits and regularizers on the image stay
//! ordinary burn autodiff.

use crate::fast::vit::{VitNet, VitSaved};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use std::sync::Arc;

/// A shared handle on a fast ViT, passed through burn's dispatch.
#[derive(Clone)]
pub struct VitRef(pub Arc<VitNet>);

impl std::fmt::Debug for VitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VitRef")
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait VitOps: Backend {
    /// Logits `[N, classes]` of a `[N, 3, S, S]` batch through `net`.
    fn netlens_vit_forward(x: FloatTensor<Self>, net: VitRef) -> FloatTensor<Self>;
}

fn run(net: &VitNet, x: &FlexTensor, save: bool) -> (FlexTensor, Option<VitSaved>) {
    let shape = x.layout().shape().dims::<4>();
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
    // The caller checked the shape (`vit_forward`), so this cannot fail.
    let (logits, saved) = net
        .forward(&values, shape, save)
        .unwrap_or_else(|e| panic!("ViT fast path on an unchecked shape: {e}"));
    let classes = logits.len() / shape[0].max(1);
    (
        FlexTensor::from_data(TensorData::new(logits, [shape[0], classes])),
        saved,
    )
}

impl VitOps for Flex {
    fn netlens_vit_forward(x: FloatTensor<Self>, net: VitRef) -> FloatTensor<Self> {
        run(&net.0, &x, false).0
    }
}

#[derive(Debug)]
struct VitBackward;

impl Backward<Flex, 1> for VitBackward {
    type State = (VitRef, Arc<VitSaved>);

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
        let dx = net.0.backward(&saved, &dlogits);
        let shape = saved.input_shape();
        grads.register::<Flex>(node.id, FlexTensor::from_data(TensorData::new(dx, shape)));
    }
}

impl<C: CheckpointStrategy> VitOps for Autodiff<Flex, C> {
    fn netlens_vit_forward(x: FloatTensor<Self>, net: VitRef) -> FloatTensor<Self> {
        match VitBackward
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

/// Logits of `x` through the fast ViT `net` as one differentiable burn operation; `None`
/// (the caller runs its plain path) when `x` is not float32 or not a shape `net` runs.
pub fn vit_forward(net: &Arc<VitNet>, x: Tensor<4>) -> Option<Tensor<2>> {
    if x.dtype() != DType::F32 || net.check(x.dims()).is_err() {
        return None;
    }
    let out = <Dispatch as VitOps>::netlens_vit_forward(x.into_dispatch(), VitRef(net.clone()));
    Some(Tensor::from_dispatch(out))
}
