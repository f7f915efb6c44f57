#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo {

namespace {

// Record signatures and fixed sizes (PKWARE APPNOTE 6.3, sections 4.3.x).
constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;

// A bounds-checked little-endian reader over a byte range of the file.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size, const std::filesystem::path& path)
      : data_(data), size_(size), path_(path) {}

  // Throws unless [offset, offset + n) lies inside the file.
  void need(uint64_t offset, uint64_t n, const char* what) const {
    if (offset > size_ || n > size_ - offset)
      fail(fmt::format("{} at byte {} runs past the end of the file ({} bytes): the archive is truncated or "
                       "corrupt",
                       what, offset, size_));
  }
  uint16_t u16(uint64_t offset) const { return static_cast<uint16_t>(uint(offset, 2)); }
  uint32_t u32(uint64_t offset) const { return static_cast<uint32_t>(uint(offset, 4)); }
  uint64_t u64(uint64_t offset) const { return uint(offset, 8); }
  std::string_view str(uint64_t offset, uint64_t n) const {
    need(offset, n, "a name");
    return {reinterpret_cast<const char*>(data_ + offset), static_cast<size_t>(n)};
  }
  uint64_t size() const { return size_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}: {}", path_.string(), what));
  }

 private:
  uint64_t uint(uint64_t offset, int bytes) const {
    need(offset, static_cast<uint64_t>(bytes), "a record field");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | data_[offset + static_cast<uint64_t>(i)];
    return v;
  }

  const uint8_t* data_;
  uint64_t size_;
  const std::filesystem::path& path_;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Finds the end-of-central-directory record (the last 22 + up to 65535
// bytes of comment) and, when its fields overflowed, the ZIP64 one.
Directory find_directory(const Reader& r) {
  if (r.size() < kEndSize)
    r.fail(fmt::format("not a ZIP archive ({} bytes, too short): pytorch_model.bin files are ZIP archives "
                       "written by torch.save; the file may be truncated",
                       r.size()));
  const uint64_t lowest = r.size() >= kEndSize + 0xffff ? r.size() - kEndSize - 0xffff : 0;
  uint64_t end = std::numeric_limits<uint64_t>::max();
  for (uint64_t pos = r.size() - kEndSize;; --pos) {
    if (r.u32(pos) == kEndSig && pos + kEndSize + r.u16(pos + 20) == r.size()) {
      end = pos;
      break;
    }
    if (pos == lowest) break;
  }
  if (end == std::numeric_limits<uint64_t>::max())
    r.fail("no ZIP end-of-central-directory record: the file is truncated or not a ZIP archive "
           "(pytorch_model.bin must be the ZIP format torch.save writes since PyTorch 1.6)");
  if (r.u16(end + 4) != 0 || r.u16(end + 6) != 0) r.fail("multi-disk ZIP archives are not supported");
  Directory d{r.u16(end + 10), r.u32(end + 16), r.u32(end + 12)};
  const bool zip64 = d.entries == 0xffff || d.offset == 0xffffffff || d.size == 0xffffffff;
  if (zip64) {
    if (end < kZip64LocatorSize || r.u32(end - kZip64LocatorSize) != kZip64LocatorSig)
      r.fail("the ZIP directory needs ZIP64 fields but the ZIP64 locator is missing: the archive is corrupt");
    const uint64_t rec = r.u64(end - kZip64LocatorSize + 8);
    r.need(rec, kZip64EndSize, "the ZIP64 end-of-central-directory record");
    if (r.u32(rec) != kZip64EndSig) r.fail("the ZIP64 end-of-central-directory record is corrupt");
    d.entries = r.u64(rec + 32);
    d.size = r.u64(rec + 40);
    d.offset = r.u64(rec + 48);
  }
  r.need(d.offset, d.size, "the ZIP central directory");
  // Each entry takes at least 46 bytes, which bounds the count before any allocation.
  if (d.entries > d.size / kCentralHeaderSize)
    r.fail(fmt::format("the ZIP directory claims {} entries in {} bytes: the archive is corrupt", d.entries, d.size));
  return d;
}

// Replaces the 32-bit fields that overflowed (0xffffffff) with the values of
// the ZIP64 extra field, in the order the format lists them.
void apply_zip64_extra(const Reader& r, uint64_t extra, uint64_t extra_len, bool size_ovf, bool csize_ovf,
                       bool offset_ovf, ZipArchive::Entry& e, uint64_t& local_offset) {
  for (uint64_t p = extra; p + 4 <= extra + extra_len;) {
    const uint16_t id = r.u16(p), len = r.u16(p + 2);
    if (p + 4 + len > extra + extra_len) r.fail(fmt::format("entry '{}': corrupt ZIP extra field", e.name));
    if (id == kZip64ExtraId) {
      uint64_t q = p + 4;
      auto take = [&](uint64_t& field) {
        if (q + 8 > p + 4 + len) r.fail(fmt::format("entry '{}': ZIP64 extra field too short", e.name));
        field = r.u64(q);
        q += 8;
      };
      if (size_ovf) take(e.size);
      if (csize_ovf) take(e.compressed_size);
      if (offset_ovf) take(local_offset);
      return;
    }
    p += 4 + len;
  }
  if (size_ovf || csize_ovf || offset_ovf) r.fail(fmt::format("entry '{}': ZIP64 extra field missing", e.name));
}

uint32_t crc_of(const uint8_t* data, uint64_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = ::crc32(crc, data, chunk);
    data += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

ZipArchive::ZipArchive(const std::filesystem::path& path) : file_(std::make_shared<MappedFile>(path)) {
  const Reader r(file_->data(), file_->size(), file_->path());
  const Directory dir = find_directory(r);
  entries_.reserve(static_cast<size_t>(dir.entries));
  uint64_t p = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    r.need(p, kCentralHeaderSize, "a ZIP central directory entry");
    if (r.u32(p) != kCentralHeaderSig) r.fail(fmt::format("ZIP central directory entry {} is corrupt", i));
    Entry e;
    const uint16_t flags = r.u16(p + 8);
    e.method = r.u16(p + 10);
    e.crc32 = r.u32(p + 16);
    e.compressed_size = r.u32(p + 20);
    e.size = r.u32(p + 24);
    const uint16_t name_len = r.u16(p + 28), extra_len = r.u16(p + 30), comment_len = r.u16(p + 32);
    uint64_t local = r.u32(p + 42);
    e.name = std::string(r.str(p + kCentralHeaderSize, name_len));
    r.need(p + kCentralHeaderSize + name_len, extra_len, "a ZIP extra field");
    apply_zip64_extra(r, p + kCentralHeaderSize + name_len, extra_len, e.size == 0xffffffff,
                      e.compressed_size == 0xffffffff, local == 0xffffffff, e, local);
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
    if (flags & 1) r.fail(fmt::format("entry '{}' is encrypted", e.name));
    if (e.method != 0 && e.method != 8)
      r.fail(fmt::format("entry '{}' uses ZIP compression method {} (only stored and deflated are supported)",
                         e.name, e.method));
    if (e.method == 0 && e.compressed_size != e.size)
      r.fail(fmt::format("entry '{}' is stored but its sizes differ ({} vs {})", e.name, e.compressed_size, e.size));
    // The data starts after the local header's own name and extra field,
    // whose lengths may differ from the central directory's.
    r.need(local, kLocalHeaderSize, fmt::format("the local header of '{}'", e.name).c_str());
    if (r.u32(local) != kLocalHeaderSig) r.fail(fmt::format("the local header of entry '{}' is corrupt", e.name));
    e.data_offset = local + kLocalHeaderSize + r.u16(local + 26) + r.u16(local + 28);
    r.need(e.data_offset, e.compressed_size, fmt::format("the data of '{}'", e.name).c_str());
    if (!by_name_.emplace(e.name, entries_.size()).second)
      r.fail(fmt::format("entry '{}' appears twice in the archive", e.name));
    entries_.push_back(std::move(e));
  }
}

const ZipArchive::Entry* ZipArchive::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ZipArchive::Bytes ZipArchive::read(const Entry& e, bool verify_crc) const {
  const uint8_t* src = file_->data() + e.data_offset;
  if (e.method == 0) {
    if (verify_crc && crc_of(src, e.size) != e.crc32)
      throw Error(fmt::format("{}: entry '{}' fails its CRC-32 check: the archive is corrupt", path().string(), e.name));
    return Bytes{src, static_cast<size_t>(e.size), file_};
  }
  // Deflated: inflate the raw stream into a buffer of the declared size.
  // Deflate expands at most about 1032:1, so a larger claim is corruption
  // (or a decompression bomb) and is refused before allocating.
  if (e.size / 1100 > e.compressed_size + 64)
    throw Error(fmt::format("{}: entry '{}' claims {} bytes from {} compressed: the archive is corrupt",
                            path().string(), e.name, e.size, e.compressed_size));
  auto out = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(e.size));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error("zlib: inflateInit2 failed");
  // zlib takes at most 4 GB per call, so larger entries are fed in pieces.
  constexpr uint64_t kPiece = 1u << 30;
  uint64_t in_fed = 0, out_given = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_in == 0 && in_fed < e.compressed_size) {
      zs.next_in = const_cast<Bytef*>(src + in_fed);
      zs.avail_in = static_cast<uInt>(std::min(kPiece, e.compressed_size - in_fed));
      in_fed += zs.avail_in;
    }
    if (zs.avail_out == 0 && out_given < e.size) {
      zs.next_out = out->data() + out_given;
      zs.avail_out = static_cast<uInt>(std::min(kPiece, e.size - out_given));
      out_given += zs.avail_out;
    }
    // Z_BUF_ERROR: no progress possible, the input ended early or the
    // output is longer than declared; both mean corruption.
    rc = inflate(&zs, Z_NO_FLUSH);
  }
  const uint64_t out_done = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_done != e.size)
    throw Error(fmt::format("{}: entry '{}' does not inflate to its declared {} bytes: the archive is corrupt",
                            path().string(), e.name, e.size));
  if (crc_of(out->data(), out->size()) != e.crc32)
    throw Error(fmt::format("{}: entry '{}' fails its CRC-32 check: the archive is corrupt", path().string(), e.name));
  return Bytes{out->data(), out->size(), out};
}

}  // namespace gptneo
