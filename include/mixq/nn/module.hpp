#pragma once
// nn::module: named parameters, named buffers, child modules, state dicts.
//
// A module owns its parameters and buffers as data members and registers
// them (by pointer) in its constructor; children are registered the same
// way. Registration prefixes names, so parameter::name is always the full
// dotted path from the outermost module ("layer1.0.conv1.weight"), the same
// names PyTorch would use for the same tree. Modules are neither copyable nor
// movable (the registries hold pointers to members); hold big models by
// std::unique_ptr if they must move.
//
// Modules attached later (adopt(): the module takes ownership) get the same
// full names, because each module remembers the prefix it was registered
// under; this is how layers above nn (the quantization layer) add their own
// state to an existing model without a parallel module hierarchy.
//
// State dict: an ordered list of (name, tensor) pairs, module by module in
// registration order: own parameters, own buffers, then children.
// load_state_dict() requires exactly the same names and shapes and throws
// mixq::error naming the key and the expected shape otherwise.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mixq/autograd/parameter.hpp"
#include "mixq/error.hpp"
#include "mixq/core/tensor.hpp"

namespace mixq {
namespace nn {

using state_dict = std::vector<std::pair<std::string, tensor>>;

class module {
 public:
  module() = default;
  virtual ~module() = default;
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  // All parameters of this module and its children, in state-dict order.
  std::vector<parameter*> parameters() {
    std::vector<parameter*> out;
    collect_parameters(out);
    return out;
  }
  // (full name, tensor*) for every buffer (batch-norm running statistics,
  // num_batches_tracked), in state-dict order.
  std::vector<std::pair<std::string, tensor*>> named_buffers() {
    std::vector<std::pair<std::string, tensor*>> out;
    collect_buffers(out);
    return out;
  }
  int64_t num_parameters() {
    int64_t n = 0;
    for (parameter* p : parameters()) n += p->numel();
    return n;
  }
  void zero_grad() {
    for (parameter* p : parameters()) p->zero_grad();
  }

  // Training mode (batch statistics in batch norm) or eval mode (running
  // statistics). Applies to all children.
  void train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.second->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // The dotted prefix of this module's names ("layer1.0.conv1."; "" at the root).
  const std::string& prefix() const { return prefix_; }

  // Takes ownership of m and registers it as the child `name` (after every
  // child registered so far); its names get this module's full prefix.
  // requires: m non-null; no child of this module is called `name`.
  template <class M>
  M& adopt(const std::string& name, std::unique_ptr<M> m) {
    MIXQ_CHECK(m != nullptr, "module::adopt: null module for '", prefix_, name, "'");
    for (auto& c : children_)
      MIXQ_CHECK(c.first != name, "module::adopt: '", prefix_, name, "' already exists");
    M& ref = *m;
    register_module(name, ref);
    owned_.push_back(std::move(m));
    return ref;
  }

  mixq::nn::state_dict state_dict() {
    mixq::nn::state_dict sd;
    std::vector<std::pair<std::string, tensor*>> all;
    collect_state(all);
    sd.reserve(all.size());
    for (auto& e : all) sd.emplace_back(e.first, *e.second);
    return sd;
  }

  // requires: sd holds exactly this module's keys with matching shapes.
  void load_state_dict(const mixq::nn::state_dict& sd) {
    std::vector<std::pair<std::string, tensor*>> all;
    collect_state(all);
    std::map<std::string, const tensor*> given;
    for (const auto& e : sd) {
      MIXQ_CHECK(given.emplace(e.first, &e.second).second, "load_state_dict: duplicate key '",
                 e.first, "'");
    }
    for (auto& e : all) {
      auto it = given.find(e.first);
      MIXQ_CHECK(it != given.end(), "load_state_dict: missing key '", e.first, "' (expected shape ",
                 e.second->shape(), ")");
      MIXQ_CHECK(it->second->shape() == e.second->shape(), "load_state_dict: key '", e.first,
                 "' has shape ", it->second->shape(), ", expected shape ", e.second->shape());
    }
    for (const auto& e : sd) {
      bool known = false;
      for (auto& a : all) known = known || a.first == e.first;
      MIXQ_CHECK(known, "load_state_dict: unexpected key '", e.first, "' (shape ", e.second.shape(),
                 ")");
    }
    for (auto& e : all) e.second->view().copy_from(given.at(e.first)->view());
  }

 protected:
  // Register a member parameter under a local name (sets p.name).
  void register_parameter(const std::string& name, parameter& p) {
    p.name = name;
    params_.push_back(&p);
  }
  void register_buffer(const std::string& name, tensor& t) { buffers_.emplace_back(name, &t); }
  // Register a member (or owned) child; prefixes the child's names with "name.".
  void register_module(const std::string& name, module& m) {
    m.add_prefix(prefix_ + name + ".");
    m.train(training_);
    children_.emplace_back(name, &m);
  }

 private:
  void add_prefix(const std::string& pre) {
    prefix_ = pre + prefix_;
    for (parameter* p : params_) p->name = pre + p->name;
    for (auto& b : buffers_) b.first = pre + b.first;
    for (auto& c : children_) c.second->add_prefix(pre);
  }
  void collect_parameters(std::vector<parameter*>& out) {
    for (parameter* p : params_) out.push_back(p);
    for (auto& c : children_) c.second->collect_parameters(out);
  }
  void collect_buffers(std::vector<std::pair<std::string, tensor*>>& out) {
    for (auto& b : buffers_) out.push_back(b);
    for (auto& c : children_) c.second->collect_buffers(out);
  }
  void collect_state(std::vector<std::pair<std::string, tensor*>>& out) {
    for (parameter* p : params_) out.emplace_back(p->name, &p->value);
    for (auto& b : buffers_) out.push_back(b);
    for (auto& c : children_) c.second->collect_state(out);
  }

  std::vector<parameter*> params_;
  std::vector<std::pair<std::string, tensor*>> buffers_;
  std::vector<std::pair<std::string, module*>> children_;
  std::vector<std::unique_ptr<module>> owned_;  // children taken over by adopt()
  std::string prefix_;
  bool training_ = true;
};

}  // namespace nn
}  // namespace mixq
