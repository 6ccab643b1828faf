#pragma once
// The target attributes of the x86 kernels, in one place.
//
// One binary carries every x86 kernel: each is compiled through
// __attribute__((target(...))) inside a namespace named for its ISA
// (detail::avx2, detail::avx512vnni, detail::avx512vbmi) and is called only
// after the CPUID check of dispatch.hpp, so an older CPU never executes an
// instruction it lacks.
//   MIXQ_TARGET_<ISA>  entry points, called out of line from baseline code
//   MIXQ_INLINE_<ISA>  helpers forced inline into an entry point whose target
//                      includes theirs
// The VBMI kernels (the LUT families) also use VNNI and BITALG.
//
// MIXQ_X86_DIAG_PUSH / MIXQ_X86_DIAG_POP bracket the AVX-512 headers: GCC 12's
// intrinsic headers implement _mm512_undefined_* as a self-initialized
// variable, which -W(maybe-)uninitialized reports at every inlined use.
#define MIXQ_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MIXQ_INLINE_AVX2 __attribute__((always_inline, target("avx2,fma")))

#define MIXQ_TARGET_AVX512VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define MIXQ_INLINE_AVX512VNNI \
  __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

#define MIXQ_TARGET_AVX512VBMI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx512bitalg")))
#define MIXQ_INLINE_AVX512VBMI  \
  __attribute__((always_inline, \
                 target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx512bitalg")))

#if defined(__GNUC__) && !defined(__clang__)
#define MIXQ_X86_DIAG_PUSH                                                                   \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define MIXQ_X86_DIAG_POP _Pragma("GCC diagnostic pop")
#else
#define MIXQ_X86_DIAG_PUSH
#define MIXQ_X86_DIAG_POP
#endif
