//! Guided backpropagation's ReLU for the reference interpreter, as one burn operation: a
//! backend extension whose forward is `clamp(x, 0, upper)` (ReLU with `upper = ∞`, ReLU6
//! with 6) and whose autodiff backward passes the gradient only where `0 < x ≤ upper` (the
//! activation's own derivative, as the plain path's `relu(x) − relu(x − 6)` has it) and the
//! gradient is positive (Springenberg et al. 2015). It runs on the host in float64 whatever
//! the tensor's precision, so it serves float32 and float64 graphs alike.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::{Tensor, TensorData};

/// The activation's upper bound (`f64::INFINITY` for a ReLU).
#[derive(Debug, Clone, Copy)]
pub struct Upper(pub f64);

#[backend_extension(Flex, Autodiff)]
pub trait GuidedOps: Backend {
    /// `clamp(x, 0, upper)` with guided backpropagation's backward.
    fn netlens_guided_relu(x: FloatTensor<Self>, upper: Upper) -> FloatTensor<Self>;
}

/// The values of `t` in float64, with its data (for shape and dtype).
fn values(t: &FlexTensor) -> (Vec<f64>, TensorData) {
    let data = t.clone().into_data();
    let v = data.try_to_vec_as::<f64>().unwrap_or_default();
    (v, data)
}

/// A tensor of `like`'s shape and dtype holding `v`.
fn tensor_like(v: Vec<f64>, like: &TensorData) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, like.shape().clone()).convert_dtype(like.dtype()))
}

fn forward(x: &FlexTensor, upper: Upper) -> FlexTensor {
    let (v, data) = values(x);
    tensor_like(
        v.into_iter().map(|a| a.clamp(0.0, upper.0)).collect(),
        &data,
    )
}

impl GuidedOps for Flex {
    fn netlens_guided_relu(x: FloatTensor<Self>, upper: Upper) -> FloatTensor<Self> {
        forward(&x, upper)
    }
}

#[derive(Debug)]
struct GuidedBackward;

impl Backward<Flex, 1> for GuidedBackward {
    type State = (FlexTensor, Upper);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let Some(node) = parent else {
            return;
        };
        let (x, upper) = ops.state;
        let (gv, data) = values(&g);
        let (xv, _) = values(&x);
        let dx = gv
            .into_iter()
            .zip(xv)
            .map(|(g, x)| {
                if x > 0.0 && x <= upper.0 && g > 0.0 {
                    g
                } else {
                    0.0
                }
            })
            .collect();
        grads.register::<Flex>(node.id, tensor_like(dx, &data));
    }
}

impl<C: CheckpointStrategy> GuidedOps for Autodiff<Flex, C> {
    fn netlens_guided_relu(x: FloatTensor<Self>, upper: Upper) -> FloatTensor<Self> {
        match GuidedBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.primitive().clone();
                let out = forward(&input, upper);
                prep.finish((input, upper), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive(), upper)),
        }
    }
}

/// `clamp(x, 0, upper)` whose backward pass is guided backpropagation's.
pub fn guided_relu<const D: usize>(x: Tensor<D>, upper: f64) -> Tensor<D> {
    let out = <Dispatch as GuidedOps>::netlens_guided_relu(x.into_dispatch(), Upper(upper));
    Tensor::from_dispatch(out)
}
