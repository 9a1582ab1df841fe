// The apr launcher of a portable build (APR_PORTABLE=ON): runs apr-avx512, apr-avx2 or apr-sse42
// from its own folder, the best one this CPU supports (APR_ISA=<name> chooses one explicitly).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

/// The widest instruction set this CPU supports among the builds.
const char* best_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vnni")) {
    return "avx512";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  return "sse42";
}

}  // namespace

int main(int argc, char** argv) {
  char self[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) {
    std::fprintf(stderr, "error: apr launcher: cannot find its own path: %s\n", std::strerror(errno));
    return 3;
  }
  self[length] = '\0';
  std::string folder(self);
  folder.resize(folder.rfind('/') + 1);
  const char* chosen = std::getenv("APR_ISA");
  const std::string isa = chosen != nullptr && *chosen != '\0' ? chosen : best_isa();
  const std::string target = folder + "apr-" + isa;
  ::execv(target.c_str(), argv);
  std::fprintf(stderr, "error: apr launcher: cannot run %s: %s\n", target.c_str(), std::strerror(errno));
  (void)argc;
  return 3;
}
