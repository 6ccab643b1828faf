#pragma once
// backward: the reverse walk over a tape.
//
// backward(loss) seeds d(loss)/d(loss) = 1 (loss must hold one element;
// backward(y, seed) seeds an arbitrary gradient of y's shape) and visits the
// nodes from last to first. A node whose output received no gradient is
// skipped; after a node ran, its output's gradient buffer goes back to the
// tape's free list (it is complete: every consumer of a value was recorded
// after its producer). Parameter gradients accumulate into parameter::grad.
// A tape supports one backward per recording; call clear() before the next
// forward.
#include "mixq/autograd/ops/add.hpp"
#include "mixq/autograd/ops/batch_norm2d.hpp"
#include "mixq/autograd/ops/conv2d.hpp"
#include "mixq/autograd/ops/flatten.hpp"
#include "mixq/autograd/ops/global_avg_pool.hpp"
#include "mixq/autograd/ops/linear.hpp"
#include "mixq/autograd/ops/relu.hpp"
#include "mixq/autograd/ops/shortcut_a.hpp"
#include "mixq/autograd/ops/softmax_cross_entropy.hpp"
#include "mixq/autograd/tape.hpp"

namespace mixq {

inline void run_node_backward(tape& t, const node& nd) {
  switch (nd.kind) {
    case op_kind::conv2d:
      conv2d_backward(t, nd);
      break;
    case op_kind::linear:
      linear_backward(t, nd);
      break;
    case op_kind::batch_norm2d:
      batch_norm2d_backward(t, nd);
      break;
    case op_kind::relu:
      relu_backward(t, nd);
      break;
    case op_kind::add:
      add_backward(t, nd);
      break;
    case op_kind::global_avg_pool:
      global_avg_pool_backward(t, nd);
      break;
    case op_kind::flatten:
      flatten_backward(t, nd);
      break;
    case op_kind::softmax_cross_entropy:
      softmax_cross_entropy_backward(t, nd);
      break;
    case op_kind::shortcut_a:
      shortcut_a_backward(t, nd);
      break;
    case op_kind::extension:
      nd.extension_backward()(t, nd);
      break;
  }
}

// requires: y was recorded on its tape with gradients enabled; seed holds
//           y.shape().numel() values; no backward has run since the last clear().
inline void backward(var y, const float* seed) {
  MIXQ_CHECK(y.valid(), "backward: invalid var");
  tape& t = *y.t;
  MIXQ_CHECK(t.grad_enabled(), "backward: the tape is in no-grad mode; nothing was recorded");
  MIXQ_CHECK(
      !t.backward_done(),
      "backward: already ran on this recording; call tape::clear() and run the forward again");
  t.mark_backward_done();
  if (!y.requires_grad()) return;
  t.seed_grad(y.id, seed);
  const auto& nodes = t.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    const node& nd = nodes[i];
    if (nd.output > y.id) continue;  // recorded after y: cannot influence it
    if (!t.grad_of(nd.output)) continue;
    run_node_backward(t, nd);
    if (nd.output != y.id) t.release_grad(nd.output);
  }
}

inline void backward(var loss) {
  MIXQ_CHECK(loss.valid() && loss.shape().numel() == 1,
             "backward: loss must hold exactly one element, got shape ",
             loss.valid() ? loss.shape().to_string() : std::string("(invalid)"));
  const float one = 1.0f;
  backward(loss, &one);
}

}  // namespace mixq
