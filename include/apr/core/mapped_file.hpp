/// @file mapped_file.hpp
/// @brief MappedFile: a read-only memory map of a whole file (RAII).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "apr/core/result.hpp"

namespace apr {

/// A whole file mapped read-only; tensors of a model are views into it (zero copy).
class MappedFile {
 public:
  /// Maps `path`; an empty, missing, unreadable or non-regular file gives a clear error.
  static Result<MappedFile> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errno == ENOENT ? ErrorCode::not_found : ErrorCode::io, "{}: cannot open: {}", path, std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int saved = errno;
      ::close(fd);
      return make_error(ErrorCode::io, "{}: cannot stat: {}", path, std::strerror(saved));
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      return make_error(ErrorCode::io, "{}: not a regular file", path);
    }
    if (info.st_size == 0) {
      ::close(fd);
      return make_error(ErrorCode::format, "{}: file is empty", path);
    }
    const auto size = static_cast<size_t>(info.st_size);
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int saved = errno;
    ::close(fd);
    if (address == MAP_FAILED) return make_error(ErrorCode::io, "{}: cannot map {} bytes: {}", path, size, std::strerror(saved));
    return MappedFile(path, static_cast<const std::byte*>(address), size);
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  /// Takes over the mapping of `other`.
  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  /// Takes over the mapping of `other`, unmapping this one.
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~MappedFile() { unmap(); }

  /// The mapped bytes.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  /// First mapped byte.
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  /// File size in bytes.
  [[nodiscard]] size_t size() const noexcept { return size_; }
  /// Path the file was opened with (used in error messages).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// Hints the kernel that the whole file will be read soon (readahead).
  void advise_will_need() const noexcept { ::madvise(const_cast<std::byte*>(data_), size_, MADV_WILLNEED); }

 private:
  MappedFile(std::string path, const std::byte* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}
  void unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace apr
