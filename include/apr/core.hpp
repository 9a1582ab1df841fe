/// @file core.hpp
/// @brief The core layer: Result/Error, dtypes, fp16/bf16, quantization, tensors, buffers, mmap, threads.
#pragma once

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/apr_quant.hpp"
#include "apr/core/byte_reader.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/ggml_blocks.hpp"
#include "apr/core/half.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/core/utf8.hpp"
