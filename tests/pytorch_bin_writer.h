// Test helper: writes pytorch_model.bin files byte for byte as torch.save
// lays them out (a ZIP archive holding a protocol-2 data.pkl and one record
// per storage), so tests can build sharded, strided, deflated, broken and
// malicious checkpoints without Python or PyTorch.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/checkpoint.h"

namespace gptneo::test {

// ---- pickle opcodes, protocol 2 ----
inline void pk_u32(std::string& p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p += static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void pk_str(std::string& p, const std::string& s) {
  p += 'X';
  pk_u32(p, static_cast<uint32_t>(s.size()));
  p += s;
}
inline void pk_int(std::string& p, int64_t v) {
  p += 'J';
  pk_u32(p, static_cast<uint32_t>(static_cast<int32_t>(v)));
}
inline void pk_global(std::string& p, const std::string& module, const std::string& name) {
  p += 'c' + module + '\n' + name + '\n';
}
inline void pk_int_tuple(std::string& p, const std::vector<int64_t>& v) {
  p += '(';
  for (int64_t x : v) pk_int(p, x);
  p += 't';
}

// One tensor entry of a state dict: a view of storage `key`.
struct TorchTensor {
  std::string name;
  std::string key;                        // storage record name
  std::string storage_class = "FloatStorage";
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> shape, strides;
};

// data.pkl of a state dict, as torch.save writes it (an OrderedDict with
// _metadata state when `ordered`, else a plain dict as transformers saves).
inline std::string torch_pickle(const std::vector<TorchTensor>& tensors, bool ordered = false) {
  std::string p = "\x80\x02";
  if (ordered) {
    pk_global(p, "collections", "OrderedDict");
    p += ")R";
  } else {
    p += '}';
  }
  p += '(';
  for (const auto& t : tensors) {
    pk_str(p, t.name);
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    p += "((";
    pk_str(p, "storage");
    pk_global(p, "torch", t.storage_class);
    pk_str(p, t.key);
    pk_str(p, "cpu");
    pk_int(p, t.storage_numel);
    p += "tQ";
    pk_int(p, t.offset);
    pk_int_tuple(p, t.shape);
    pk_int_tuple(p, t.strides);
    p += '\x89';  // requires_grad False
    pk_global(p, "collections", "OrderedDict");
    p += ")Rt";  // backward_hooks = OrderedDict(); close the args tuple
    p += 'R';
  }
  p += 'u';
  if (ordered) {  // state {'_metadata': {'': {'version': 1}}}, as nn.Module.state_dict() carries
    p += "}(";
    pk_str(p, "_metadata");
    p += "}(";
    pk_str(p, "");
    p += "}(";
    pk_str(p, "version");
    pk_int(p, 1);
    p += "uuub";
  }
  p += '.';
  return p;
}

inline void pk_u64(std::string& p, uint64_t v) {
  pk_u32(p, static_cast<uint32_t>(v));
  pk_u32(p, static_cast<uint32_t>(v >> 32));
}

// A ZIP archive of `entries` (name, bytes), stored or deflated. With
// `zip64`, every size and offset goes through the ZIP64 records (as in
// checkpoints above 4 GB) and each record's data is padded to 64 bytes with
// an extra field in its local header, as PyTorch's writer does.
inline std::string zip_archive(const std::vector<std::pair<std::string, std::string>>& entries, bool deflated = false,
                               bool zip64 = false) {
  auto u16 = [](std::string& s, uint32_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>((v >> 8) & 0xff);
  };
  std::string out, central;
  for (const auto& [name, data] : entries) {
    std::string payload = data;
    if (deflated) {
      z_stream zs{};
      deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      payload.resize(deflateBound(&zs, data.size()));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      zs.avail_in = static_cast<uInt>(data.size());
      zs.next_out = reinterpret_cast<Bytef*>(payload.data());
      zs.avail_out = static_cast<uInt>(payload.size());
      deflate(&zs, Z_FINISH);
      payload.resize(zs.total_out);
      deflateEnd(&zs);
    }
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const uint64_t offset = out.size();
    auto header = [&](std::string& s, bool is_central) {
      std::string extra;
      if (zip64) {
        u16(extra, 0x0001);
        u16(extra, is_central ? 24 : 16);
        pk_u64(extra, data.size());
        pk_u64(extra, payload.size());
        if (is_central) pk_u64(extra, offset);
        if (!is_central) {  // pad the data start to 64 bytes
          const size_t data_at = s.size() + 30 + name.size() + extra.size() + 4;
          u16(extra, 0x4246);
          u16(extra, static_cast<uint32_t>((64 - data_at % 64) % 64));
          extra.append((64 - data_at % 64) % 64, 'Z');
        }
      }
      const uint32_t big = 0xffffffff;
      pk_u32(s, is_central ? 0x02014b50 : 0x04034b50);
      if (is_central) u16(s, 45);
      u16(s, zip64 ? 45 : 20);     // version needed
      u16(s, 0);                   // flags
      u16(s, deflated ? 8 : 0);    // method
      u16(s, 0), u16(s, 0);        // time, date
      pk_u32(s, crc);
      pk_u32(s, zip64 ? big : static_cast<uint32_t>(payload.size()));
      pk_u32(s, zip64 ? big : static_cast<uint32_t>(data.size()));
      u16(s, static_cast<uint32_t>(name.size()));
      u16(s, static_cast<uint32_t>(extra.size()));
      if (is_central) {
        u16(s, 0), u16(s, 0), u16(s, 0);  // comment, disk, internal attributes
        pk_u32(s, 0);                    // external attributes
        pk_u32(s, zip64 ? big : static_cast<uint32_t>(offset));
      }
      s += name;
      s += extra;
    };
    header(out, false);
    out += payload;
    header(central, true);
  }
  const uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const uint64_t record = out.size();
    pk_u32(out, 0x06064b50);
    pk_u64(out, 44);          // size of the rest of the record
    u16(out, 45), u16(out, 45);
    pk_u32(out, 0), pk_u32(out, 0);
    pk_u64(out, entries.size()), pk_u64(out, entries.size());
    pk_u64(out, central.size());
    pk_u64(out, cd_offset);
    pk_u32(out, 0x07064b50);  // the locator
    pk_u32(out, 0);
    pk_u64(out, record);
    pk_u32(out, 1);
  }
  pk_u32(out, 0x06054b50);
  u16(out, 0), u16(out, 0);
  const uint32_t count = zip64 ? 0xffff : static_cast<uint32_t>(entries.size());
  u16(out, count), u16(out, count);
  pk_u32(out, zip64 ? 0xffffffff : static_cast<uint32_t>(central.size()));
  pk_u32(out, zip64 ? 0xffffffff : static_cast<uint32_t>(cd_offset));
  u16(out, 0);
  return out;
}

// A pytorch_model.bin of contiguous float tensors taken from a checkpoint
// (one storage each), under the archive folder "archive/".
inline std::string torch_save(const Checkpoint& ck, const std::vector<std::string>& names,
                              const std::map<std::string, std::string>& extra_records = {}) {
  std::vector<TorchTensor> tensors;
  std::vector<std::pair<std::string, std::string>> records;
  for (size_t i = 0; i < names.size(); ++i) {
    const TensorView& v = ck.get(names[i]);
    TorchTensor t;
    t.name = names[i];
    t.key = std::to_string(i);
    t.storage_class = v.dtype == DType::F16 ? "HalfStorage" : v.dtype == DType::BF16 ? "BFloat16Storage"
                      : v.dtype == DType::BOOL ? "BoolStorage" : "FloatStorage";
    t.storage_numel = v.numel();
    t.shape = v.shape;
    int64_t stride = 1;
    t.strides.resize(v.shape.size());
    for (size_t d = v.shape.size(); d-- > 0;) {
      t.strides[d] = stride;
      stride *= v.shape[d];
    }
    tensors.push_back(t);
    records.emplace_back("archive/data/" + t.key, std::string(reinterpret_cast<const char*>(v.data), v.nbytes));
  }
  records.insert(records.begin(), {"archive/data.pkl", torch_pickle(tensors)});
  for (const auto& [k, v] : extra_records) records.emplace_back(k, v);
  records.emplace_back("archive/version", "3\n");
  return zip_archive(records);
}

}  // namespace gptneo::test
