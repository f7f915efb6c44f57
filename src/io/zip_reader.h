// A read-only ZIP archive over a memory-mapped file, as torch.save writes it
// (pytorch_model.bin): entries are found through the central directory
// (ZIP64 included, for checkpoints above 4 GB), and a stored (uncompressed)
// entry is a view into the mapping, so reading it copies nothing. Deflated
// entries are inflated with zlib into memory the returned bytes own.
//
// Every offset and size is checked against the file before use: a truncated
// or corrupt archive gives a gptneo::Error naming the file, never a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace gptneo {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0: stored, 8: deflated
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;         // uncompressed
    uint64_t data_offset = 0;  // of the (compressed) bytes in the file
  };

  // Bytes of an entry and what keeps them alive (the mapping, or the
  // inflated copy).
  struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> keep_alive;
    std::string_view view() const { return {reinterpret_cast<const char*>(data), size}; }
  };

  // Maps `path` and reads its central directory; throws gptneo::Error when
  // the file is not a ZIP archive, is truncated or is inconsistent.
  explicit ZipArchive(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // The entry called `name`, or nullptr.
  const Entry* find(std::string_view name) const;
  // The uncompressed bytes of `entry`. Stored entries are returned in place;
  // with `verify_crc` their CRC-32 is checked too (it reads every byte, so
  // large tensor records skip it). Inflated entries are always checked.
  Bytes read(const Entry& entry, bool verify_crc = false) const;

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

}  // namespace gptneo
