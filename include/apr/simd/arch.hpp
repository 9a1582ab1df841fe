/// @file arch.hpp
/// @brief SIMD architecture tags: xsimd's arch types, the build's default, and ISA facts.
#pragma once

#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace apr::simd {

// Kernels call xsimd's reductions unqualified (`hadd(acc)`, `fms(a, b, c)`): argument-dependent
// lookup finds them when a vector Arch is instantiated, and a build for which xsimd has no
// architecture at all (WebAssembly without SIMD128), where xsimd declares none of them, still compiles.

/// Portable fallback: plain C++ loops, the reference twin every kernel is tested against.
struct Scalar {};

/// Best architecture the compiler targets in this translation unit (avx512bw with -march=native
/// on Zen 4/5; sse4_1 in a WebAssembly build with -msimd128 -msse4.1, which emscripten turns into
/// SIMD128), or Scalar when it targets none (WebAssembly without -msimd128).
using DefaultArch = std::conditional_t<std::is_same_v<xsimd::default_arch, xsimd::unavailable>, Scalar, xsimd::default_arch>;

/// True when Arch is AVX-512 (F, with BW for byte ops).
template <class Arch>
inline constexpr bool is_avx512_v = std::is_base_of_v<xsimd::avx512bw, Arch>;

/// True when Arch is AVX2 or wider with FMA (the 256-bit path).
template <class Arch>
inline constexpr bool is_avx2_v = std::is_base_of_v<xsimd::avx2, Arch> || std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>;

/// True when the translation unit may use AVX-512 VNNI int8 dot products (vpdpbusd).
inline constexpr bool kHasAvx512Vnni =
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
    true;
#else
    false;
#endif

/// How far ahead of the bytes being multiplied a streamed weight row is prefetched (decode
/// reads each weight once, so the loads must overlap the arithmetic instead of waiting on memory).
inline constexpr size_t kPrefetchBytes = 1024;

/// kPrefetchBytes for the int8 kernels (Q8_0, Q4_0 rows against int8 activations), which go
/// through their bytes faster than the float ones and want the lines further ahead.
inline constexpr size_t kInt8PrefetchBytes = 2048;

}  // namespace apr::simd
