/// @file simd.hpp
/// @brief All SIMD kernels (apr::simd): dot, gemv, gemm, int8 paths, norms, activations, softmax, RoPE.
#pragma once

#include "apr/simd/activation.hpp"
#include "apr/simd/arch.hpp"
#include "apr/simd/dot.hpp"
#include "apr/simd/dot_int8.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/gemm.hpp"
#include "apr/simd/gemv.hpp"
#include "apr/simd/load.hpp"
#include "apr/simd/norm.hpp"
#include "apr/simd/quantized_activations.hpp"
#include "apr/simd/rope.hpp"
#include "apr/simd/softmax.hpp"
