/// @file format.hpp
/// @brief Model files: APR v2, SafeTensors, GGUF, format detection, conversion (apr::format).
#pragma once

#include "apr/format/apr_layout.hpp"
#include "apr/format/apr_layout_map.hpp"
#include "apr/format/apr_license.hpp"
#include "apr/format/apr_payload.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_signature_block.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/compression.hpp"
#include "apr/format/convert.hpp"
#include "apr/format/crc32.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/gguf.hpp"
#include "apr/format/gguf_writer.hpp"
#include "apr/format/memory_tensor_file.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/format/safetensors_writer.hpp"
#include "apr/format/tensor_file.hpp"
#include "apr/format/tensor_merge.hpp"
#include "apr/format/tensor_values.hpp"
