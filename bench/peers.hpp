#pragma once
// Peer libraries on the benchmark's shapes: what a user would otherwise run.
//
//   onednn_conv   oneDNN convolution_forward, NHWC activations, weights in the
//                 layout oneDNN picks (format_tag::any, reordered once, outside
//                 the timing), int8: u8 src x s8 weights -> s32 bias, per-channel
//                 output scale, ReLU, u8 dst (the same work as mixq's fused
//                 epilogue); fp32: f32 everywhere, bias + ReLU.
//   onednn_gemm   dnnl_gemm_u8s8s32 (row-major C[M][N] = A[M][K] B[K][N], s32)
//                 and dnnl_sgemm, on the conv's GEMM shape (M = pixels,
//                 N = C_out, K = 9 C_in; the im2col copy is NOT timed, so this
//                 is an upper bound for an im2col lowering).
//   openblas      cblas_sgemm on the same GEMM shape (fp32).
//   eigen         Eigen 3.4 row-major float GEMM (C.noalias() = A * B).
//
// Each peer object owns its buffers; run() is the timed call. check() compares a
// few sampled outputs with a direct dot product (exact for int32, 1e-3 relative
// for fp32) so a misconfigured peer cannot report a fake speed.
// Built only when CMake found the package (MIXQ_BENCH_HAVE_DNNL,
// MIXQ_BENCH_HAVE_OPENBLAS, MIXQ_BENCH_HAVE_EIGEN).
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

#if MIXQ_BENCH_HAVE_DNNL
#include <dnnl.hpp>
#endif
#if MIXQ_BENCH_HAVE_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif
#if MIXQ_BENCH_HAVE_EIGEN
#include <Eigen/Core>
#endif

namespace mixq_bench {

struct conv_geom {
  int batch, c_in, h, w, c_out, kernel, stride, pad;
  int out_h() const { return (h + 2 * pad - kernel) / stride + 1; }
  int out_w() const { return (w + 2 * pad - kernel) / stride + 1; }
  double macs() const {
    return double(batch) * out_h() * out_w() * c_out * double(c_in) * kernel * kernel;
  }
  long long gemm_m() const { return (long long)batch * out_h() * out_w(); }
  long long gemm_k() const { return (long long)c_in * kernel * kernel; }
};

class peer {
 public:
  virtual ~peer() = default;
  virtual void run() = 0;
  virtual bool check() { return true; }
};

#if MIXQ_BENCH_HAVE_DNNL
class onednn_conv : public peer {
 public:
  onednn_conv(const conv_geom& g, bool int8) : eng_(dnnl::engine::kind::cpu, 0), strm_(eng_) {
    using namespace dnnl;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    const dt act = int8 ? dt::u8 : dt::f32;
    const dt wdt = int8 ? dt::s8 : dt::f32;
    const dt bdt = int8 ? dt::s32 : dt::f32;
    memory::dims src_d{g.batch, g.c_in, g.h, g.w}, wei_d{g.c_out, g.c_in, g.kernel, g.kernel},
        dst_d{g.batch, g.c_out, g.out_h(), g.out_w()}, bia_d{g.c_out};
    memory::desc src_md(src_d, act, tag::nhwc), dst_md(dst_d, act, tag::nhwc);
    memory::desc wei_any(wei_d, wdt, tag::any), bia_md(bia_d, bdt, tag::x);
    convolution_forward::desc cd(prop_kind::forward_inference, algorithm::convolution_direct,
                                 src_md, wei_any, bia_md, dst_md, {g.stride, g.stride},
                                 {g.pad, g.pad}, {g.pad, g.pad});
    primitive_attr attr;
    if (int8) attr.set_output_scales(2, std::vector<float>(size_t(g.c_out), 1.0f / 4096));
    post_ops po;
    po.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(po);
    convolution_forward::primitive_desc pd(cd, attr, eng_);
    prim_ = convolution_forward(pd);
    rng r(7);
    src_ = memory(src_md, eng_);
    dst_ = memory(dst_md, eng_);
    bia_ = memory(bia_md, eng_);
    memory wuser(memory::desc(wei_d, wdt, tag::ohwi), eng_);
    const size_t ns = size_t(g.batch) * g.c_in * g.h * g.w, nw = size_t(g.c_out) * g.gemm_k();
    if (int8) {
      auto* s = static_cast<uint8_t*>(src_.get_data_handle());
      for (size_t i = 0; i < ns; ++i) s[i] = uint8_t(r.uniform(0, 15));
      auto* w = static_cast<int8_t*>(wuser.get_data_handle());
      for (size_t i = 0; i < nw; ++i) w[i] = int8_t(r.uniform(-8, 7));
      auto* b = static_cast<int32_t*>(bia_.get_data_handle());
      for (int i = 0; i < g.c_out; ++i) b[i] = r.uniform(-100, 100);
    } else {
      auto* s = static_cast<float*>(src_.get_data_handle());
      for (size_t i = 0; i < ns; ++i) s[i] = float(r.uniform(0, 15)) / 16;
      auto* w = static_cast<float*>(wuser.get_data_handle());
      for (size_t i = 0; i < nw; ++i) w[i] = float(r.uniform(-8, 7)) / 8;
      auto* b = static_cast<float*>(bia_.get_data_handle());
      for (int i = 0; i < g.c_out; ++i) b[i] = 0.1f;
    }
    wei_ = memory(pd.weights_desc(), eng_);
    reorder(wuser, wei_).execute(strm_, wuser, wei_);
    strm_.wait();
    impl_ = pd.impl_info_str();
  }
  void run() override {
    prim_.execute(strm_, {{DNNL_ARG_SRC, src_},
                          {DNNL_ARG_WEIGHTS, wei_},
                          {DNNL_ARG_BIAS, bia_},
                          {DNNL_ARG_DST, dst_}});
    strm_.wait();
  }
  const std::string& impl_name() const { return impl_; }

 private:
  dnnl::engine eng_;
  dnnl::stream strm_;
  dnnl::convolution_forward prim_;
  dnnl::memory src_, wei_, bia_, dst_;
  std::string impl_;
};

class onednn_gemm_u8s8 : public peer {
 public:
  onednn_gemm_u8s8(long long m, long long n, long long k)
      : m_(m), n_(n), k_(k), a_(size_t(m * k)), b_(size_t(k * n)), c_(size_t(m * n)) {
    rng r(11);
    for (auto& v : a_) v = uint8_t(r.uniform(0, 255));
    for (auto& v : b_) v = int8_t(r.uniform(-128, 127));
  }
  void run() override {
    int32_t co = 0;
    dnnl_gemm_u8s8s32('N', 'N', 'F', m_, n_, k_, 1.0f, a_.data(), k_, 0, b_.data(), n_, 0, 0.0f,
                      c_.data(), n_, &co);
  }
  bool check() override {
    rng r(5);
    for (int s = 0; s < 16; ++s) {
      long long i = r.uniform(0, int(m_ - 1)), j = r.uniform(0, int(n_ - 1));
      long long acc = 0;
      for (long long p = 0; p < k_; ++p)
        acc += int(a_[size_t(i * k_ + p)]) * int(b_[size_t(p * n_ + j)]);
      if (acc != c_[size_t(i * n_ + j)]) return false;
    }
    return true;
  }

 private:
  long long m_, n_, k_;
  std::vector<uint8_t> a_;
  std::vector<int8_t> b_;
  std::vector<int32_t> c_;
};
#endif

// fp32 GEMM buffers shared by the float peers.
class float_gemm_base : public peer {
 public:
  float_gemm_base(long long m, long long n, long long k)
      : m_(m), n_(n), k_(k), a_(size_t(m * k)), b_(size_t(k * n)), c_(size_t(m * n)) {
    rng r(13);
    for (auto& v : a_) v = float(r.uniform(0, 15)) / 16;
    for (auto& v : b_) v = float(r.uniform(-8, 7)) / 8;
  }
  bool check() override {
    rng r(5);
    for (int s = 0; s < 16; ++s) {
      long long i = r.uniform(0, int(m_ - 1)), j = r.uniform(0, int(n_ - 1));
      double acc = 0;
      for (long long p = 0; p < k_; ++p)
        acc += double(a_[size_t(i * k_ + p)]) * b_[size_t(p * n_ + j)];
      if (std::fabs(acc - c_[size_t(i * n_ + j)]) > 1e-3 * (1 + std::fabs(acc))) return false;
    }
    return true;
  }

 protected:
  long long m_, n_, k_;
  std::vector<float> a_, b_, c_;
};

#if MIXQ_BENCH_HAVE_DNNL
class onednn_sgemm : public float_gemm_base {
 public:
  using float_gemm_base::float_gemm_base;
  void run() override {
    dnnl_sgemm('N', 'N', m_, n_, k_, 1.0f, a_.data(), k_, b_.data(), n_, 0.0f, c_.data(), n_);
  }
};
#endif

#if MIXQ_BENCH_HAVE_OPENBLAS
class openblas_sgemm : public float_gemm_base {
 public:
  openblas_sgemm(long long m, long long n, long long k, int threads) : float_gemm_base(m, n, k) {
    openblas_set_num_threads(threads);
  }
  void run() override {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m_), int(n_), int(k_), 1.0f,
                a_.data(), int(k_), b_.data(), int(n_), 0.0f, c_.data(), int(n_));
  }
};
#endif

#if MIXQ_BENCH_HAVE_EIGEN
class eigen_sgemm : public float_gemm_base {
 public:
  using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  eigen_sgemm(long long m, long long n, long long k, int threads) : float_gemm_base(m, n, k) {
    Eigen::setNbThreads(threads);
  }
  void run() override {
    Eigen::Map<const mat> a(a_.data(), m_, k_), b(b_.data(), k_, n_);
    Eigen::Map<mat> c(c_.data(), m_, n_);
    c.noalias() = a * b;
  }
};
#endif

// Measures one peer (after a correctness check) and prints its row.
// Returns GOP/s from the minimum time, or 0 when the check failed.
inline double bench_peer(const options& o, writer& w, peer& p, double ops, row r, double peak) {
  p.run();
  bool ok = p.check();
  r.set("valid", ok ? "ok" : "MISMATCH");
  double gops = 0;
  if (ok) {
    timing t = time_it(o, [&] { p.run(); });
    gops = ops / t.min_s * 1e-9;
    r.setf("min_ms", t.min_s * 1e3, 4).setf("median_ms", t.median_s * 1e3, 4).setf("gops", gops, 2);
    r.setf("wall_min_ms", t.wall_min_s * 1e3, 4);
    if (peak > 0) r.setf("peak_gops", peak, 1).setf("pct_peak", 100.0 * gops / peak, 1);
  }
  w.print(r);
  return gops;
}

// All peers for one GEMM shape (M x N x K) and optionally the conv that
// lowers to it. `name` is the row-name prefix the --filter sees (the impl
// name is appended). Returns oneDNN's int8 GOP/s (conv for convs, GEMM for
// pure GEMMs), 0 when not run.
inline double run_peers(const options& o, writer& w, const std::string& name, const conv_geom* conv,
                        long long m, long long n, long long k, int threads, double fp32_peak,
                        double int8_peak, const row& base) {
  double onednn_int8 = 0;
  const double ops = 2.0 * double(m) * double(n) * double(k);
  auto mk = [&](const char* impl) {
    row r = base;
    r.set("impl", impl).set("isa", "peer");
    return r;
  };
  auto want = [&](const char* impl) { return matches(o, name + "/" + impl); };
#if MIXQ_BENCH_HAVE_DNNL
  if (conv && want("onednn_conv_int8")) {
    onednn_conv c(*conv, true);
    onednn_int8 =
        bench_peer(o, w, c, ops, mk("onednn_conv_int8").set("note", c.impl_name()), int8_peak);
  }
  if (conv && want("onednn_conv_f32")) {
    onednn_conv c(*conv, false);
    bench_peer(o, w, c, ops, mk("onednn_conv_f32").set("note", c.impl_name()), fp32_peak);
  }
  if (want("onednn_gemm_u8s8s32")) {
    onednn_gemm_u8s8 g(m, n, k);
    double v = bench_peer(o, w, g, ops, mk("onednn_gemm_u8s8s32"), int8_peak);
    if (!conv) onednn_int8 = v;
  }
  if (want("onednn_sgemm")) {
    onednn_sgemm g(m, n, k);
    bench_peer(o, w, g, ops, mk("onednn_sgemm"), fp32_peak);
  }
#endif
#if MIXQ_BENCH_HAVE_OPENBLAS
  if (want("openblas_sgemm")) {
    openblas_sgemm g(m, n, k, threads);
    bench_peer(o, w, g, ops, mk("openblas_sgemm"), fp32_peak);
    openblas_set_num_threads(1);  // fewer spinning BLAS threads during later rows
  }
#endif
#if MIXQ_BENCH_HAVE_EIGEN
  if (want("eigen_sgemm")) {
    eigen_sgemm g(m, n, k, threads);
    bench_peer(o, w, g, ops, mk("eigen_sgemm"), fp32_peak);
  }
#endif
  (void)threads;
  (void)conv;
  (void)ops;
  (void)mk;
  (void)want;
  return onednn_int8;
}

}  // namespace mixq_bench
