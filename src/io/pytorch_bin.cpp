#include "io/pytorch_bin.h"

#include <array>
#include <cstring>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "core/mapped_file.h"
#include "gptneo/error.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace gptneo {

namespace fs = std::filesystem;
using pickle::Value;
using pickle::ValuePtr;

namespace {

// data.pkl of a 6B-parameter model is about 40 kB; far larger is not a state dict.
constexpr uint64_t kMaxPickleBytes = 64u << 20;
constexpr size_t kMaxDims = 16;

constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr const char* kOrderedDict = "collections.OrderedDict";

// The typed storage classes torch.save names, and their element types.
struct StorageClass {
  const char* name;
  DType dtype;
};
constexpr std::array<StorageClass, 10> kStorageClasses = {{
    {"torch.FloatStorage", DType::F32},
    {"torch.HalfStorage", DType::F16},
    {"torch.BFloat16Storage", DType::BF16},
    {"torch.DoubleStorage", DType::F64},
    {"torch.LongStorage", DType::I64},
    {"torch.IntStorage", DType::I32},
    {"torch.ShortStorage", DType::I16},
    {"torch.CharStorage", DType::I8},
    {"torch.ByteStorage", DType::U8},
    {"torch.BoolStorage", DType::BOOL},
}};

std::optional<DType> storage_dtype(const std::string& global) {
  for (const auto& c : kStorageClasses)
    if (global == c.name) return c.dtype;
  return std::nullopt;
}

// One storage record of the archive.
struct Storage {
  std::string key;
  DType dtype;
  uint64_t numel;
  ZipArchive::Bytes bytes;
};

// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage.
struct Tensor {
  std::shared_ptr<const Storage> storage;
  uint64_t offset = 0;  // in elements
  std::vector<int64_t> shape, strides;
};

// Recognises the legacy (PyTorch < 1.6) format: a bare pickle stream.
bool looks_like_legacy_pickle(const fs::path& path) {
  const MappedFile f(path);
  return f.size() >= 2 && f.data()[0] == 0x80 && f.data()[1] <= 5;
}

class StateDictReader {
 public:
  StateDictReader(const ZipArchive& zip, std::string prefix)
      : zip_(zip), prefix_(std::move(prefix)), where_(zip.path().string()) {}

  pickle::Hooks hooks() {
    pickle::Hooks h;
    h.find_class = [this](const std::string& m, const std::string& n) { return find_class(m, n); };
    h.persistent_load = [this](const ValuePtr& pid) { return persistent_load(pid); };
    h.reduce = [this](const ValuePtr& f, const ValuePtr& args) { return reduce(f, args); };
    h.build = [this](const ValuePtr& obj, const ValuePtr& state) { build(obj, state); };
    return h;
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(fmt::format("{}: {}", where_, what)); }

 private:
  ValuePtr find_class(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (full != kRebuildTensor && full != kRebuildParameter && full != kOrderedDict && !storage_dtype(full))
      fail(fmt::format("data.pkl names the Python global '{}', which a tensor state dict never uses; refusing "
                       "to load the file (it may be malicious). Allowed: {}, {}, {} and the torch.*Storage types",
                       full, kRebuildTensor, kRebuildParameter, kOrderedDict));
    ValuePtr v = pickle::make_value(Value::Kind::Global);
    v->text = full;
    return v;
  }

  // ('storage', <storage class>, key, location, numel)
  ValuePtr persistent_load(const ValuePtr& pid) {
    const auto& it = pid->items;
    if (!pid->is(Value::Kind::Tuple) || it.size() != 5 || !it[0]->is(Value::Kind::String) ||
        it[0]->text != "storage" || !it[1]->is(Value::Kind::Global) || !it[2]->is(Value::Kind::String) ||
        !it[4]->is(Value::Kind::Int) || it[4]->integer < 0)
      fail(fmt::format("data.pkl: unexpected persistent id ({}); expected ('storage', type, key, location, size)",
                       pid->describe()));
    const auto dtype = storage_dtype(it[1]->text);
    if (!dtype) fail(fmt::format("data.pkl: '{}' is not a storage type", it[1]->text));
    const std::string& key = it[2]->text;
    const auto numel = static_cast<uint64_t>(it[4]->integer);
    if (auto found = storages_.find(key); found != storages_.end()) {
      if (found->second->dtype != *dtype || found->second->numel != numel)
        fail(fmt::format("data.pkl: storage '{}' is described two different ways", key));
      return pickle::make_object(found->second);
    }
    const std::string record = prefix_ + "data/" + key;
    const ZipArchive::Entry* e = zip_.find(record);
    if (!e)
      fail(fmt::format("the record '{}' of storage '{}' is missing from the archive: the file is incomplete or "
                       "corrupt",
                       record, key));
    const size_t elem = dtype_size(*dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / elem || e->size < numel * elem)
      fail(fmt::format("storage '{}' ({}) holds {} bytes but its {} elements of {} need {}: the file is truncated "
                       "or corrupt",
                       key, record, e->size, numel, dtype_name(*dtype), numel * elem));
    auto s = std::make_shared<const Storage>(Storage{key, *dtype, numel, zip_.read(*e)});
    storages_.emplace(key, s);
    return pickle::make_object(s);
  }

  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
    if (!callable->is(Value::Kind::Global)) fail(fmt::format("data.pkl calls a {}", callable->describe()));
    const std::string& f = callable->text;
    const auto& a = args->items;
    if (f == kOrderedDict) {
      if (!a.empty()) fail("data.pkl: OrderedDict is called with arguments");
      return pickle::make_value(Value::Kind::Dict);
    }
    if (f == kRebuildTensor) return rebuild_tensor(a);
    if (f == kRebuildParameter) {  // (tensor, requires_grad, backward_hooks)
      if (a.empty() || !as_tensor(a[0])) fail("data.pkl: _rebuild_parameter without a tensor");
      return a[0];
    }
    fail(fmt::format("data.pkl calls '{}', which a tensor state dict never does", f));
  }

  // Only OrderedDict state (its _metadata attribute) is expected; it holds
  // nothing the weights need.
  void build(const ValuePtr& object, const ValuePtr& state) {
    if (!object->is(Value::Kind::Dict)) fail(fmt::format("data.pkl sets the state of a {}", object->describe()));
  }

  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a) {
    if (a.size() < 4 || a.size() > 7 || !a[0]->is(Value::Kind::Object) || !a[1]->is(Value::Kind::Int) ||
        !a[2]->is(Value::Kind::Tuple) || !a[3]->is(Value::Kind::Tuple))
      fail("data.pkl: malformed _rebuild_tensor_v2 arguments");
    const auto* storage = std::any_cast<std::shared_ptr<const Storage>>(&a[0]->object);
    if (!storage) fail("data.pkl: _rebuild_tensor_v2 is given something other than a storage");
    Tensor t;
    t.storage = *storage;
    if (a[1]->integer < 0) fail("data.pkl: a tensor has a negative storage offset");
    t.offset = static_cast<uint64_t>(a[1]->integer);
    t.shape = int_tuple(a[2], "size");
    t.strides = int_tuple(a[3], "stride");
    if (t.shape.size() != t.strides.size()) fail("data.pkl: a tensor's size and stride differ in length");
    return pickle::make_object(std::make_shared<const Tensor>(std::move(t)));
  }

  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) {
    if (v->items.size() > kMaxDims) fail(fmt::format("data.pkl: a tensor {} has {} dimensions", what, v->items.size()));
    std::vector<int64_t> out;
    for (const auto& i : v->items) {
      if (!i->is(Value::Kind::Int) || i->integer < 0)
        fail(fmt::format("data.pkl: a tensor {} holds {}", what, i->describe()));
      out.push_back(i->integer);
    }
    return out;
  }

 public:
  static const std::shared_ptr<const Tensor>* as_tensor(const ValuePtr& v) {
    return v->is(Value::Kind::Object) ? std::any_cast<std::shared_ptr<const Tensor>>(&v->object) : nullptr;
  }

 private:
  const ZipArchive& zip_;
  std::string prefix_;
  std::string where_;
  std::map<std::string, std::shared_ptr<const Storage>> storages_;
};

// Product of `shape`, or nullopt past 2^62.
std::optional<uint64_t> element_count(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

bool is_contiguous(const Tensor& t) {
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] == 1) continue;  // any stride is fine for a dimension of size 1
    if (t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

// Copies a strided view into contiguous memory, element by element.
std::shared_ptr<std::vector<uint8_t>> materialise(const Tensor& t, uint64_t numel, size_t elem) {
  auto out = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(numel * elem));
  std::vector<int64_t> index(t.shape.size(), 0);
  const uint8_t* base = t.storage->bytes.data;
  for (uint64_t i = 0; i < numel; ++i) {
    uint64_t src = t.offset;
    for (size_t d = 0; d < index.size(); ++d) src += static_cast<uint64_t>(index[d] * t.strides[d]);
    std::memcpy(out->data() + i * elem, base + src * elem, elem);
    for (size_t d = index.size(); d-- > 0;) {  // advance the row-major odometer
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

TensorView to_view(const std::string& name, const Tensor& t, const std::string& where) {
  const Storage& s = *t.storage;
  const size_t elem = dtype_size(s.dtype);
  TensorView v;
  v.name = name;
  v.dtype = s.dtype;
  v.shape = t.shape;
  v.source = where;
  const auto numel = element_count(t.shape);
  if (!numel) throw Error(fmt::format("{}: tensor '{}' is impossibly large", where, name));
  if (*numel > 0) {
    // The last element the view reaches must lie inside the storage.
    unsigned __int128 last = t.offset;
    for (size_t d = 0; d < t.shape.size(); ++d)
      last += static_cast<unsigned __int128>(t.shape[d] - 1) * static_cast<uint64_t>(t.strides[d]);
    if (last >= s.numel)
      throw Error(fmt::format("{}: tensor '{}' (shape {}, offset {}) reaches past the end of its storage '{}' of {} "
                              "elements: the file is corrupt",
                              where, name, v.shape_string(), t.offset, s.key, s.numel));
    // More elements than the storage holds means overlapping ones (zero
    // strides, as torch.expand makes): never a weight, and copying them out
    // could take unbounded memory.
    if (*numel > s.numel)
      throw Error(fmt::format("{}: tensor '{}' (shape {}) has more elements than its storage '{}' ({}): "
                              "overlapping (expanded) views are not supported",
                              where, name, v.shape_string(), s.key, s.numel));
  }
  v.nbytes = static_cast<size_t>(*numel * elem);
  if (*numel == 0) {
    v.data = s.bytes.data;
    v.keep_alive = s.bytes.keep_alive;
  } else if (is_contiguous(t)) {
    v.data = s.bytes.data + t.offset * elem;
    v.keep_alive = s.bytes.keep_alive;
  } else {
    auto copy = materialise(t, *numel, elem);
    v.data = copy->data();
    v.keep_alive = copy;
  }
  return v;
}

// "<prefix>/" of the archive's data.pkl.
std::string find_prefix(const ZipArchive& zip) {
  std::optional<std::string> prefix;
  for (const auto& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.substr(slash + 1) != "data.pkl") continue;
    if (prefix)
      throw Error(fmt::format("{}: the archive holds more than one data.pkl", zip.path().string()));
    prefix = e.name.substr(0, slash + 1);
  }
  if (!prefix)
    throw Error(fmt::format("{}: a ZIP archive without data.pkl: not a checkpoint written by torch.save",
                            zip.path().string()));
  if (zip.find(*prefix + "constants.pkl"))
    throw Error(fmt::format("{}: a TorchScript archive (torch.jit.save), not a state dict written by torch.save",
                            zip.path().string()));
  return *prefix;
}

}  // namespace

PytorchBinFile::PytorchBinFile(const fs::path& path) {
  if (fs::is_regular_file(path) && looks_like_legacy_pickle(path))
    throw Error(fmt::format("{}: the legacy PyTorch format (torch.save before PyTorch 1.6) is not supported; "
                            "re-save it with a newer PyTorch (torch.save(torch.load(f), f)) or convert it to "
                            "safetensors",
                            path.string()));
  zip_ = std::make_shared<ZipArchive>(path);
  const std::string where = path.string();
  const std::string prefix = find_prefix(*zip_);
  if (const auto* order = zip_->find(prefix + "byteorder")) {
    const std::string value(zip_->read(*order, true).view());
    if (value != "little")
      throw Error(fmt::format("{}: byte order '{}' is not supported (only little-endian)", where, value));
  }
  const ZipArchive::Entry& pkl = *zip_->find(prefix + "data.pkl");
  if (pkl.size > kMaxPickleBytes)
    throw Error(fmt::format("{}: data.pkl is {} bytes, far more than a state dict needs", where, pkl.size));
  const ZipArchive::Bytes bytes = zip_->read(pkl, true);

  StateDictReader reader(*zip_, prefix);
  const ValuePtr root = pickle::unpickle(bytes.view(), reader.hooks(), where + ": data.pkl");
  if (!root->is(Value::Kind::Dict))
    reader.fail(fmt::format("data.pkl holds a {}, not a state dict (a dict of tensors)", root->describe()));
  for (const auto& [key, value] : root->entries) {
    if (!key->is(Value::Kind::String)) reader.fail(fmt::format("data.pkl: a state dict key is a {}", key->describe()));
    const auto* tensor = StateDictReader::as_tensor(value);
    if (!tensor)
      reader.fail(fmt::format("data.pkl: '{}' is a {}, not a tensor (only plain state dicts are supported)", key->text,
                              value->describe()));
    if (tensors_.count(key->text)) reader.fail(fmt::format("data.pkl: tensor '{}' appears twice", key->text));
    tensors_.emplace(key->text, to_view(key->text, **tensor, where));
  }
}

}  // namespace gptneo
