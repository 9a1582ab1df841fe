/// @file nn.hpp
/// @brief Building blocks (apr::nn): Linear, dense networks, norms, embeddings, RoPE, KV cache, attention, MoE routing and expert groups.
#pragma once

#include "apr/nn/attention.hpp"
#include "apr/nn/dense_network.hpp"
#include "apr/nn/dynamic_linear.hpp"
#include "apr/nn/embedding.hpp"
#include "apr/nn/expert_groups.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/nn/linear.hpp"
#include "apr/nn/moe_router.hpp"
#include "apr/nn/norm.hpp"
#include "apr/nn/rope_table.hpp"
