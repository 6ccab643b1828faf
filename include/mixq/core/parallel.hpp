#pragma once
// Thin OpenMP helpers. Every threaded loop in mixq is an op-level driver loop
// (never inside a micro-kernel); without OpenMP everything runs on one thread.
#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace mixq
