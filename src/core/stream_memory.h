// Memory for the large buffers decoding streams through once per token:
// weight matrices the model owns (converted at load, or built in memory, as
// opposed to weights used where a file is mapped) and KV caches.
#pragma once

#include <cstddef>
#include <memory>

namespace gptneo {

// `bytes` of uninitialised memory, 64-byte aligned. Large buffers are
// asked to be backed by 2 MB pages (madvise MADV_HUGEPAGE, where the kernel
// has transparent huge pages in "madvise" or "always" mode): decoding reads
// every weight (and every cached key and value) once per token, and with
// 4 KB pages each 4 KB of such a stream costs a TLB miss. Falls back to
// ordinary pages where refused.
std::shared_ptr<void> allocate_stream_memory(size_t bytes);

}  // namespace gptneo
