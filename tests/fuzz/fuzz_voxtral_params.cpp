// seeds: voxtral/voxtral-micro/params.json
// libFuzzer target: Mistral's params.json reader (VoxtralConfig::from_params_json) on arbitrary
// text (never an exception: wrong types and absurd values are errors); a config it accepts must
// write a params.json that reads back to the same one, and take a delay of one audio token.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "apr/models/voxtral_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto json = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (json.is_discarded()) return 0;
  auto config = apr::models::VoxtralConfig::from_params_json(json);
  if (!config) return 0;
  const auto written = config->to_params_json();
  auto back = apr::models::VoxtralConfig::from_params_json(written);
  if (!back || back->to_params_json() != written) __builtin_trap();
  const size_t token_ms = config->samples_per_token / 16;
  if (token_ms <= 2400 && (!config->set_delay_ms(token_ms) || config->delay_ms() != token_ms)) __builtin_trap();
  return 0;
}
