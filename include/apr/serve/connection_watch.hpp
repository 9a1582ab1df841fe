/// @file connection_watch.hpp
/// @brief ConnectionWatch: tells a request handler that its client has closed the connection,
/// so a generation nobody will read can be cancelled. cpp-httplib 0.11 gives a handler the
/// addresses of its connection but not its socket, so the socket is found once by those
/// addresses among the process's descriptors, then polled for the peer's hang-up.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace apr::serve {

/// The accepted socket of one HTTP request, watched for the client closing it.
class ConnectionWatch {
 public:
  /// The socket whose local port is `local_port` and whose peer is `remote_addr`:`remote_port`,
  /// or nullopt when no descriptor of this process matches (then nothing can be watched).
  static std::optional<ConnectionWatch> find(int local_port, const std::string& remote_addr, int remote_port) {
    DIR* fds = opendir("/proc/self/fd");
    if (fds == nullptr) return std::nullopt;
    std::optional<ConnectionWatch> found;
    while (const dirent* entry = readdir(fds)) {
      char* end = nullptr;
      const long fd = std::strtol(entry->d_name, &end, 10);
      if (end == entry->d_name || *end != '\0') continue;
      if (matches(static_cast<int>(fd), local_port, remote_addr, remote_port)) {
        found = ConnectionWatch(static_cast<int>(fd));
        break;
      }
    }
    closedir(fds);
    return found;
  }

  /// True once the client has closed its end (or the connection failed): nothing it sent
  /// afterwards will be read, and nothing written to it will arrive.
  [[nodiscard]] bool peer_closed() const {
    pollfd watched{socket_, POLLRDHUP, 0};
    if (::poll(&watched, 1, 0) <= 0) return false;
    return (watched.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

 private:
  explicit ConnectionWatch(int socket) : socket_(socket) {}

  /// The port and numeric address of an IPv4 or IPv6 socket address.
  static std::optional<std::pair<int, std::string>> endpoint(const sockaddr_storage& address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET) {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
      if (inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text) == nullptr) return std::nullopt;
      return std::pair{static_cast<int>(ntohs(v4.sin_port)), std::string(text)};
    }
    if (address.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
      if (inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text) == nullptr) return std::nullopt;
      return std::pair{static_cast<int>(ntohs(v6.sin6_port)), std::string(text)};
    }
    return std::nullopt;
  }

  /// Whether descriptor `fd` is a connected socket with these local port and peer.
  static bool matches(int fd, int local_port, const std::string& remote_addr, int remote_port) {
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) return false;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) return false;
    const auto ours = endpoint(local), theirs = endpoint(peer);
    return ours && theirs && ours->first == local_port && theirs->first == remote_port && theirs->second == remote_addr;
  }

  int socket_;
};

}  // namespace apr::serve
