/// @file aligned_buffer.hpp
/// @brief AlignedBuffer: owned, 64-byte aligned, zero-initialised bytes.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace apr {

/// Alignment of every owned buffer and tensor in apr (a cache line, an AVX-512 register).
inline constexpr size_t kAlignment = 64;
/// Size of a transparent huge page on x86-64.
inline constexpr size_t kHugePage = size_t{2} << 20;

/// Owned bytes aligned to kAlignment, zero-initialised; movable, not copyable.
class AlignedBuffer {
 public:
  /// An empty buffer.
  AlignedBuffer() = default;
  /// `bytes` zeroed bytes; throws std::bad_alloc when memory is exhausted. Buffers of 2 MiB and
  /// more are 2 MiB aligned and advised to use transparent huge pages (streaming weights through
  /// fewer TLB entries measured ~10% more bandwidth for decode here); they are anonymous
  /// mappings, whose pages the kernel zeroes on first touch, so a cache sized for the longest
  /// input costs memory and time only for the part an input fills.
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    if (bytes == 0) return;
    if (bytes < kHugePage) {
      const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
      data_ = static_cast<std::byte*>(std::aligned_alloc(kAlignment, rounded));
      if (data_ == nullptr) throw std::bad_alloc();
      std::memset(data_, 0, rounded);
      return;
    }
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    mapped_ = rounded + kHugePage;  // room to start on a 2 MiB boundary
    void* base = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    base_ = base;
    const auto address = reinterpret_cast<uintptr_t>(base);
    data_ = reinterpret_cast<std::byte*>((address + kHugePage - 1) / kHugePage * kHugePage);
    ::madvise(data_, rounded, MADV_HUGEPAGE);
  }
  /// Takes `other`'s bytes, leaving it empty.
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), base_(std::exchange(other.base_, nullptr)),
        mapped_(std::exchange(other.mapped_, 0)), size_(std::exchange(other.size_, 0)) {}
  /// Frees these bytes and takes `other`'s, leaving it empty.
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      base_ = std::exchange(other.base_, nullptr);
      mapped_ = std::exchange(other.mapped_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  /// Not copyable.
  AlignedBuffer(const AlignedBuffer&) = delete;
  /// Not copyable.
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  /// Frees the bytes.
  ~AlignedBuffer() { release(); }

  /// First byte (nullptr when empty).
  [[nodiscard]] std::byte* data() noexcept { return data_; }
  /// First byte (nullptr when empty).
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  /// Size in bytes.
  [[nodiscard]] size_t size() const noexcept { return size_; }
  /// True when the buffer holds no bytes.
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// The bytes as a span.
  [[nodiscard]] std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  /// The bytes as a span.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  /// The bytes viewed as an array of T (size() / sizeof(T) elements).
  template <class T>
  [[nodiscard]] std::span<T> as() noexcept {
    return {reinterpret_cast<T*>(data_), size_ / sizeof(T)};
  }
  /// The bytes viewed as an array of const T (size() / sizeof(T) elements).
  template <class T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    return {reinterpret_cast<const T*>(data_), size_ / sizeof(T)};
  }

 private:
  void release() noexcept {
    if (base_ != nullptr) {
      ::munmap(base_, mapped_);
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    base_ = nullptr;
  }

  std::byte* data_ = nullptr;
  void* base_ = nullptr;  ///< the mapping of a buffer of kHugePage bytes or more (else nullptr: data_ is from aligned_alloc)
  size_t mapped_ = 0;     ///< bytes mapped at base_
  size_t size_ = 0;
};

/// A typed, 64-byte aligned, zero-initialised array of `count` trivially copyable T.
template <class T>
class AlignedArray {
 public:
  /// An empty array.
  AlignedArray() = default;
  /// `count` zeroed elements.
  explicit AlignedArray(size_t count) : buffer_(count * sizeof(T)), count_(count) {}
  /// First element.
  [[nodiscard]] T* data() noexcept { return reinterpret_cast<T*>(buffer_.data()); }
  /// First element.
  [[nodiscard]] const T* data() const noexcept { return reinterpret_cast<const T*>(buffer_.data()); }
  /// Number of elements.
  [[nodiscard]] size_t size() const noexcept { return count_; }
  /// Element `i` (unchecked).
  T& operator[](size_t i) noexcept { return data()[i]; }
  /// Element `i` (unchecked).
  const T& operator[](size_t i) const noexcept { return data()[i]; }
  /// The elements as a span.
  [[nodiscard]] std::span<T> span() noexcept { return {data(), count_}; }
  /// The elements as a span.
  [[nodiscard]] std::span<const T> span() const noexcept { return {data(), count_}; }
  /// Iterator to the first element.
  T* begin() noexcept { return data(); }
  /// Iterator past the last element.
  T* end() noexcept { return data() + count_; }
  /// Iterator to the first element.
  const T* begin() const noexcept { return data(); }
  /// Iterator past the last element.
  const T* end() const noexcept { return data() + count_; }

 private:
  AlignedBuffer buffer_;
  size_t count_ = 0;
};

}  // namespace apr
