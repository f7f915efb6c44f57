// pytorch_model.bin: the torch.save ZIP archive read without Python, the
// restricted unpickler, sharded .bin sets, and malicious or broken files
// (each must end in a clear gptneo::Error, never in code execution or a crash).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "gptneo/error.h"
#include "gptneo/model.h"
#include "io/checkpoint.h"
#include "io/pickle.h"
#include "io/pytorch_bin.h"
#include "io/zip_reader.h"
#include "pytorch_bin_writer.h"
#include "test_support.h"

namespace gptneo {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::TorchTensor;

fs::path neo_tiny_bin_dir() { return test::data_dir() / "neo-tiny-bin"; }

// Runs f, expecting a gptneo::Error whose message contains every part.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one mentioning '" << parts.front() << "'";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

std::vector<float> floats_of(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype, t.data, out.size(), out.data());
  return out;
}

// A folder holding one pytorch_model.bin with the given bytes.
fs::path write_bin(const TempDir& dir, const std::string& bytes) {
  test::write_file(dir / "pytorch_model.bin", bytes);
  return dir / "pytorch_model.bin";
}

std::vector<float> last_logits(Model& model, const std::vector<TokenId>& ids) {
  KVCache cache = model.new_cache(static_cast<int64_t>(ids.size()));
  const SequenceChunk chunk{&cache, ids, true};
  return model.forward({&chunk, 1}).data;
}

const std::vector<TokenId> kIds = {464, 3290, 318, 257, 1332, 13, 50256, 11, 290, 40};

// ---- the real torch.save file ------------------------------------------------

TEST(PytorchBin, ReadsTheTorchSavedNeoTinyTensorForTensor) {
  const Checkpoint bin = Checkpoint::open(neo_tiny_bin_dir());
  const Checkpoint st = Checkpoint::open(test::neo_tiny_dir());
  EXPECT_EQ(bin.describe(), "pytorch_model.bin");
  for (const auto& [name, v] : st.tensors()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(bin.has(name));
    const TensorView& b = bin.get(name);
    EXPECT_EQ(b.dtype, v.dtype);
    EXPECT_EQ(b.shape, v.shape);
    ASSERT_EQ(b.nbytes, v.nbytes);
    EXPECT_EQ(std::memcmp(b.data, v.data, v.nbytes), 0);
  }
  // lm_head.weight is a view of wte's storage: the same bytes, not a copy.
  EXPECT_EQ(bin.get("lm_head.weight").data, bin.get("transformer.wte.weight").data);
  // The causal-mask buffers are read (and later ignored by the model).
  const TensorView& mask = bin.get("transformer.h.0.attn.attention.bias");
  EXPECT_EQ(mask.dtype, DType::BOOL);
  EXPECT_EQ(mask.shape, (std::vector<int64_t>{1, 1, 128, 128}));
  EXPECT_EQ(mask.data[0], 1);    // (0, 0) may attend
  EXPECT_EQ(mask.data[1], 0);    // (0, 1) may not
  EXPECT_TRUE(bin.has("transformer.h.0.attn.attention.masked_bias"));
}

TEST(PytorchBin, NeoTinyBinGivesExactlyTheLogitsOfNeoTiny) {
  const auto bin = Model::load(neo_tiny_bin_dir());
  const auto st = Model::load(test::neo_tiny_dir());
  EXPECT_EQ(last_logits(*bin, kIds), last_logits(*st, kIds));
}

TEST(PytorchBin, SafetensorsArePreferredWhenBothArePresent) {
  TempDir d;
  test::copy_folder(neo_tiny_bin_dir(), d.path());
  fs::copy_file(test::neo_tiny_dir() / "model.safetensors", d / "model.safetensors");
  EXPECT_EQ(Checkpoint::open(d.path()).describe(), "model.safetensors");
}

// ---- files written by the test writer (torch.save's layout) ----------------------

TEST(PytorchBin, ShardedBinSetLoadsWithIdenticalLogits) {
  const Checkpoint src = Checkpoint::open(test::neo_tiny_dir());
  std::vector<std::string> first, second;
  for (const auto& [name, v] : src.tensors()) (name < "transformer.h.2" ? first : second).push_back(name);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  TempDir d;
  fs::copy_file(test::neo_tiny_dir() / "config.json", d / "config.json");
  test::write_file(d / "pytorch_model-00001-of-00002.bin", test::torch_save(src, first));
  test::write_file(d / "pytorch_model-00002-of-00002.bin", test::torch_save(src, second));
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& n : first) index["weight_map"][n] = "pytorch_model-00001-of-00002.bin";
  for (const auto& n : second) index["weight_map"][n] = "pytorch_model-00002-of-00002.bin";
  test::write_file(d / "pytorch_model.bin.index.json", index.dump());

  EXPECT_EQ(Checkpoint::open(d.path()).describe(), "2 shards");
  const auto sharded = Model::load(d.path());
  const auto st = Model::load(test::neo_tiny_dir());
  EXPECT_EQ(last_logits(*sharded, kIds), last_logits(*st, kIds));

  fs::remove(d / "pytorch_model-00002-of-00002.bin");
  expect_error([&] { Checkpoint::open(d.path()); },
               {"pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json", "missing"});
}

TEST(PytorchBin, StridedViewsOffsetsAndSharedStoragesAreMaterialisedCorrectly) {
  // Storage "0" holds 0..11. Views: a contiguous one at offset 2, the
  // transpose of a 3x4 matrix (strides (1, 4)), and a strided column.
  std::vector<float> storage(12);
  for (int i = 0; i < 12; ++i) storage[i] = static_cast<float>(i);
  const std::vector<TorchTensor> tensors = {
      {"offset", "0", "FloatStorage", 12, 2, {2, 3}, {3, 1}},
      {"transposed", "0", "FloatStorage", 12, 0, {4, 3}, {1, 4}},
      {"column", "0", "FloatStorage", 12, 1, {3}, {4}},
      {"scalar", "0", "FloatStorage", 12, 5, {}, {}},
  };
  TempDir d;
  const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(tensors, true)},
                                                    {"archive/data/0", float_bytes(storage)}}));
  const PytorchBinFile f(path);
  const auto& t = f.tensors();
  EXPECT_EQ(floats_of(t.at("offset")), (std::vector<float>{2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(floats_of(t.at("transposed")), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(floats_of(t.at("column")), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(floats_of(t.at("scalar")), (std::vector<float>{5}));
  // The contiguous view points into the archive, 2 floats past the scalar's storage start.
  EXPECT_EQ(t.at("scalar").data - t.at("offset").data, 3 * 4);
}

TEST(PytorchBin, HalfBfloat16AndDeflatedRecordsAreRead) {
  const std::vector<uint16_t> half = {f32_to_f16(1.5f), f32_to_f16(-2.0f)};
  const std::vector<uint16_t> bf = {f32_to_bf16(3.0f), f32_to_bf16(0.25f)};
  const std::vector<TorchTensor> tensors = {
      {"h", "a", "HalfStorage", 2, 0, {2}, {1}},
      {"b", "b", "BFloat16Storage", 2, 0, {2}, {1}},
  };
  for (const bool deflate : {false, true}) {
    SCOPED_TRACE(deflate ? "deflated" : "stored");
    TempDir d;
    const auto path = write_bin(
        d, test::zip_archive({{"m/data.pkl", test::torch_pickle(tensors)},
                              {"m/data/a", std::string(reinterpret_cast<const char*>(half.data()), 4)},
                              {"m/data/b", std::string(reinterpret_cast<const char*>(bf.data()), 4)}},
                             deflate));
    const PytorchBinFile f(path);
    EXPECT_EQ(f.tensors().at("h").dtype, DType::F16);
    EXPECT_EQ(floats_of(f.tensors().at("h")), (std::vector<float>{1.5f, -2.0f}));
    EXPECT_EQ(f.tensors().at("b").dtype, DType::BF16);
    EXPECT_EQ(floats_of(f.tensors().at("b")), (std::vector<float>{3.0f, 0.25f}));
  }
}

TEST(PytorchBin, Zip64ArchivesWithAlignedRecordsAreRead) {
  // Checkpoints above 4 GB (GPT-J 6B in float32 is 24 GB) need the ZIP64 records.
  const Checkpoint src = Checkpoint::open(test::neo_tiny_dir());
  std::vector<TorchTensor> tensors;
  std::vector<std::pair<std::string, std::string>> records;
  int key = 0;
  for (const std::string name : {"transformer.ln_f.weight", "transformer.h.0.mlp.c_fc.weight"}) {
    const TensorView& v = src.get(name);
    const int64_t cols = v.shape.size() == 2 ? v.shape[1] : 1;
    tensors.push_back({name, std::to_string(key), "FloatStorage", v.numel(), 0, v.shape,
                       v.shape.size() == 2 ? std::vector<int64_t>{cols, 1} : std::vector<int64_t>{1}});
    records.emplace_back("big/data/" + std::to_string(key++), std::string(reinterpret_cast<const char*>(v.data), v.nbytes));
  }
  records.insert(records.begin(), {"big/data.pkl", test::torch_pickle(tensors)});
  for (const bool deflate : {false, true}) {
    TempDir d;
    const PytorchBinFile f(write_bin(d, test::zip_archive(records, deflate, true)));
    for (const auto& t : tensors) {
      SCOPED_TRACE(t.name);
      const TensorView& got = f.tensors().at(t.name);
      const TensorView& want = src.get(t.name);
      ASSERT_EQ(got.shape, want.shape);
      EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes), 0);
      if (!deflate) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(got.data) % 64, 0u);  // the padded record, used in place
      }
    }
  }
}

TEST(PytorchBin, RebuildParameterIsAccepted) {
  std::string p = "\x80\x02}(";
  test::pk_str(p, "w");
  test::pk_global(p, "torch._utils", "_rebuild_parameter");
  p += '(';
  test::pk_global(p, "torch._utils", "_rebuild_tensor_v2");
  p += "((";
  test::pk_str(p, "storage");
  test::pk_global(p, "torch", "FloatStorage");
  test::pk_str(p, "0");
  test::pk_str(p, "cpu");
  test::pk_int(p, 1);
  p += "tQ";
  test::pk_int(p, 0);
  test::pk_int_tuple(p, {1});
  test::pk_int_tuple(p, {1});
  p += "\x89N";  // requires_grad, hooks
  p += "tR";     // _rebuild_tensor_v2(...)
  p += "\x88N";  // requires_grad, hooks of the parameter
  p += "tRu.";
  TempDir d;
  const auto path = write_bin(d, test::zip_archive({{"a/data.pkl", p}, {"a/data/0", float_bytes({7.0f})}}));
  EXPECT_EQ(floats_of(PytorchBinFile(path).tensors().at("w")), std::vector<float>{7.0f});
}

// ---- malicious and broken files ---------------------------------------------------

TEST(PytorchBinSafety, APickleNamingOsSystemIsRefusedAndNothingRuns) {
  const fs::path marker = fs::temp_directory_path() / ("gptneo-pwned-" + std::to_string(::getpid()));
  fs::remove(marker);
  // {'x': os.system('touch MARKER')}
  std::string p = "\x80\x02}(";
  test::pk_str(p, "x");
  test::pk_global(p, "os", "system");
  test::pk_str(p, "touch " + marker.string());
  p += "\x85Ru.";
  TempDir d;
  test::copy_folder(test::neo_tiny_dir(), d.path());
  fs::remove(d / "model.safetensors");
  write_bin(d, test::zip_archive({{"archive/data.pkl", p}}));
  expect_error([&] { Model::load(d.path()); }, {"pytorch_model.bin", "os.system", "refusing"});
  EXPECT_FALSE(fs::exists(marker));
}

TEST(PytorchBinSafety, OtherGlobalsAndCallsAreRefused) {
  const std::vector<std::pair<std::string, std::string>> globals = {
      {"builtins", "eval"}, {"__builtin__", "getattr"}, {"subprocess", "Popen"}, {"torch", "load"},
      {"torch._utils", "_rebuild_tensor_v2x"}, {"numpy.core.multiarray", "_reconstruct"}};
  for (const auto& [module, name] : globals) {
    std::string p = "\x80\x02";
    test::pk_global(p, module, name);
    p += ".";
    TempDir d;
    const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", p}}));
    expect_error([&] { PytorchBinFile f(path); }, {module + "." + name, "refusing"});
  }
  // An allowed global used as a function it is not: calling a storage class.
  std::string p = "\x80\x02";
  test::pk_global(p, "torch", "FloatStorage");
  p += ")R.";
  TempDir d;
  const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", p}}));
  expect_error([&] { PytorchBinFile f(path); }, {"torch.FloatStorage"});
}

TEST(PytorchBinSafety, OpcodesOutsideTheSubsetAreRefused) {
  // INST (old-style instance creation), NEWOBJ, EXT1, and a protocol-0 string.
  for (const std::string& body : {std::string("(ios\nsystem\n."), std::string("N)\x81."), std::string("\x82\x01."),
                                 std::string("S'x'\n.")}) {
    TempDir d;
    const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", "\x80\x02" + body}}));
    expect_error([&] { PytorchBinFile f(path); }, {"unsupported pickle opcode"});
  }
}

TEST(PytorchBinSafety, AMissingStorageRecordIsAClearError) {
  const std::vector<TorchTensor> tensors = {{"w", "0", "FloatStorage", 4, 0, {4}, {1}},
                                            {"v", "1", "FloatStorage", 4, 0, {4}, {1}}};
  TempDir d;
  const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(tensors)},
                                                    {"archive/data/0", float_bytes({1, 2, 3, 4})}}));
  expect_error([&] { PytorchBinFile f(path); }, {"archive/data/1", "missing"});
}

TEST(PytorchBinSafety, AStorageShorterThanItsTensorNeedsIsAClearError) {
  // The storage record holds 3 floats but claims 4.
  const std::vector<TorchTensor> claims_more = {{"w", "0", "FloatStorage", 4, 0, {4}, {1}}};
  TempDir d;
  auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(claims_more)},
                                              {"archive/data/0", float_bytes({1, 2, 3})}}));
  expect_error([&] { PytorchBinFile f(path); }, {"storage '0'", "12 bytes", "need 16"});
  // The storage is whole but the view reaches past it (offset 2 + 3 elements > 4).
  const std::vector<TorchTensor> view_past = {{"w", "0", "FloatStorage", 4, 2, {3}, {1}}};
  path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(view_past)},
                                         {"archive/data/0", float_bytes({1, 2, 3, 4})}}));
  expect_error([&] { PytorchBinFile f(path); }, {"tensor 'w'", "past the end of its storage"});
  // Strides that walk out of the storage.
  const std::vector<TorchTensor> stride_past = {{"w", "0", "FloatStorage", 4, 0, {2, 2}, {3, 1}}};
  path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(stride_past)},
                                         {"archive/data/0", float_bytes({1, 2, 3, 4})}}));
  expect_error([&] { PytorchBinFile f(path); }, {"tensor 'w'", "past the end of its storage"});
  // An expanded view: 2^40 elements over one stored float.
  const std::vector<TorchTensor> expanded = {{"w", "0", "FloatStorage", 1, 0, {1 << 20, 1 << 20}, {0, 0}}};
  path = write_bin(d, test::zip_archive({{"archive/data.pkl", test::torch_pickle(expanded)},
                                         {"archive/data/0", float_bytes({1})}}));
  expect_error([&] { PytorchBinFile f(path); }, {"tensor 'w'", "overlapping"});
}

TEST(PytorchBinSafety, TruncatedArchivesAreClearErrors) {
  const std::string whole = test::read_file(neo_tiny_bin_dir() / "pytorch_model.bin");
  for (const size_t keep : {size_t{0}, size_t{10}, size_t{100}, whole.size() / 2, whole.size() - 23, whole.size() - 1}) {
    SCOPED_TRACE(keep);
    TempDir d;
    const auto path = write_bin(d, whole.substr(0, keep));
    expect_error([&] { PytorchBinFile f(path); }, {"pytorch_model.bin"});
  }
}

TEST(PytorchBinSafety, EveryTruncationOfDataPklIsAClearError) {
  const std::vector<TorchTensor> tensors = {{"a", "0", "FloatStorage", 4, 0, {2, 2}, {2, 1}},
                                            {"b", "0", "FloatStorage", 4, 1, {3}, {1}}};
  const std::string pkl = test::torch_pickle(tensors, true);
  for (size_t keep = 0; keep < pkl.size(); ++keep) {
    TempDir d;
    const auto path = write_bin(d, test::zip_archive({{"archive/data.pkl", pkl.substr(0, keep)},
                                                      {"archive/data/0", float_bytes({1, 2, 3, 4})}}));
    EXPECT_THROW(PytorchBinFile f(path), Error) << "data.pkl cut to " << keep << " bytes";
  }
}

TEST(PytorchBinSafety, CorruptZipDirectoriesAreClearErrors) {
  const std::vector<TorchTensor> tensors = {{"w", "0", "FloatStorage", 1, 0, {1}, {1}}};
  const std::string good = test::zip_archive({{"archive/data.pkl", test::torch_pickle(tensors)},
                                              {"archive/data/0", float_bytes({1})}});
  // Flip each byte of the central directory and end record in turn: every
  // result must load or fail with gptneo::Error, never crash.
  const size_t cd = good.rfind(std::string("PK\x01\x02", 4), good.rfind(std::string("PK\x01\x02", 4)) - 1);
  int errors = 0;
  for (size_t i = cd; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    TempDir d;
    const auto path = write_bin(d, bad);
    try {
      PytorchBinFile f(path);
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
  // A deflated record whose data is garbage.
  std::string deflated = test::zip_archive({{"archive/data.pkl", test::torch_pickle(tensors)},
                                            {"archive/data/0", float_bytes({1})}}, true);
  deflated[deflated.find("archive/data.pkl") + 17] ^= 0x55;
  TempDir d;
  expect_error([&] { PytorchBinFile f(write_bin(d, deflated)); }, {"data.pkl"});
}

TEST(PytorchBinSafety, NotAStateDictIsAClearError) {
  TempDir d;
  // A legacy (PyTorch < 1.6) file starts with a bare pickle.
  expect_error([&] { PytorchBinFile f(write_bin(d, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")); },
               {"legacy PyTorch format"});
  expect_error([&] { PytorchBinFile f(write_bin(d, test::zip_archive({{"x/other.txt", "hi"}}))); }, {"without data.pkl"});
  expect_error([&] { PytorchBinFile f(write_bin(d, test::zip_archive({{"x/data.pkl", "\x80\x02K\x05."}}))); },
               {"not a state dict"});
  std::string p = "\x80\x02}(";
  test::pk_str(p, "n");
  test::pk_int(p, 3);
  p += "u.";
  expect_error([&] { PytorchBinFile f(write_bin(d, test::zip_archive({{"x/data.pkl", p}}))); },
               {"'n'", "not a tensor"});
}

// ---- the unpickler alone ------------------------------------------------------------

using namespace std::string_literals;  // the byte strings hold NULs

pickle::ValuePtr plain(const std::string& bytes) { return pickle::unpickle(bytes, {}, "test"); }

TEST(PytorchBinPickle, ReadsPlainValues) {
  const auto v = plain("\x80\x02(K\x07M\x01\x01J\xff\xff\xff\xff\x8a\x01\xff\x8a\x00\x88NX\x02\x00\x00\x00hi]q\x00K\x01"
                       "ah\x00t."s);
  ASSERT_TRUE(v->is(pickle::Value::Kind::Tuple));
  ASSERT_EQ(v->items.size(), 10u);
  EXPECT_EQ(v->items[0]->integer, 7);
  EXPECT_EQ(v->items[1]->integer, 257);
  EXPECT_EQ(v->items[2]->integer, -1);
  EXPECT_EQ(v->items[3]->integer, -1);  // LONG1 0xff
  EXPECT_EQ(v->items[4]->integer, 0);   // LONG1 of no bytes
  EXPECT_TRUE(v->items[5]->is(pickle::Value::Kind::Bool));
  EXPECT_TRUE(v->items[6]->is(pickle::Value::Kind::None));
  EXPECT_EQ(v->items[7]->text, "hi");
  EXPECT_EQ(v->items[8]->items.size(), 1u);
  EXPECT_EQ(v->items[9], v->items[8]);  // the memo returns the same object
}

TEST(PytorchBinPickle, MalformedStreamsAreErrors) {
  expect_error([] { plain("\x80\x02t."); }, {"no MARK"});
  expect_error([] { plain("\x80\x02" "a."); }, {"underflow"});
  expect_error([] { plain("\x80\x02h\x05."); }, {"memo entry 5"});
  expect_error([] { plain("\x80\x02K\x01K\x02."); }, {"unbalanced"});
  expect_error([] { plain("\x80\x09N."); }, {"protocol 9"});
  expect_error([] { plain("\x80\x02X\xff\xff\xff\x7f"); }, {"truncated"});
  expect_error([] { plain("\x80\x02\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01."); }, {"too large"});
  expect_error([] { plain("\x80\x02X\x02\x00\x00\x00\xff\xfe."s); }, {"UTF-8"});
  expect_error([] { plain("\x80\x02" "cos\nsystem\n."); }, {"os.system"});
  expect_error([] { plain("\x80\x02N)R."); }, {"REDUCE"});
}

TEST(PytorchBinPickle, DeepNestingAndCyclesAreRefused) {
  // 100 nested one-element tuples.
  std::string deep = "\x80\x02N";
  for (int i = 0; i < 100; ++i) deep += '\x85';
  deep += '.';
  expect_error([&] { plain(deep); }, {"nest"});
  // A list put inside a tuple and then appended to (the way a cycle is built).
  expect_error([] { plain("\x80\x02]q\x00\x85h\x00K\x01"
                                      "a."s); }, {"changed after it was nested"});
}

TEST(PytorchBinZip, FindsEntriesAndTheirBytes) {
  const std::string z = test::zip_archive({{"a/b.txt", "hello"}, {"a/c", std::string(1000, 'x')}}, true);
  TempDir d;
  test::write_file(d / "t.zip", z);
  const ZipArchive zip(d / "t.zip");
  ASSERT_EQ(zip.entries().size(), 2u);
  ASSERT_NE(zip.find("a/c"), nullptr);
  EXPECT_EQ(zip.find("nope"), nullptr);
  EXPECT_EQ(zip.read(*zip.find("a/b.txt")).view(), "hello");
  EXPECT_EQ(zip.read(*zip.find("a/c")).view(), std::string(1000, 'x'));
  EXPECT_EQ(zip.find("a/c")->method, 8);
}

}  // namespace
}  // namespace gptneo
