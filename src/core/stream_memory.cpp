#include "core/stream_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace gptneo {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Below this, a buffer would mostly be rounding: small matrices (biases,
// gpt-neo-tiny) take the ordinary allocator.
constexpr size_t kHugeMinBytes = size_t{4} << 20;

}  // namespace

std::shared_ptr<void> allocate_stream_memory(size_t bytes) {
  if (bytes >= kHugeMinBytes) {
    // Over-allocate by one huge page so the buffer can start on a 2 MB
    // boundary (a mapping is only 4 KB aligned); munmap takes the whole span.
    const size_t span = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
    void* base = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base != MAP_FAILED) {
      const auto addr = reinterpret_cast<uintptr_t>(base);
      void* aligned = reinterpret_cast<void*>((addr + kHugePage - 1) & ~(kHugePage - 1));
      // Only whole huge pages of the buffer: a partly used last one would
      // add up to 2 MB of resident memory per matrix.
      madvise(aligned, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice: may be refused
      return std::shared_ptr<void>(aligned, [base, span](void*) { munmap(base, span); });
    }
  }
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

}  // namespace gptneo
