// The safetensors reader and writer, and every way a file can be broken.
#include <gtest/gtest.h>

#include <cstring>

#include "gptneo/error.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace gptneo {
namespace {

using test::TempDir;
using test::write_file;

// A file built by hand: header JSON text + data bytes.
std::string make_file(const std::string& header, const std::string& data, int64_t header_len = -1) {
  const uint64_t n = header_len >= 0 ? static_cast<uint64_t>(header_len) : header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

// Expects opening `bytes` as a safetensors file to fail with a message
// containing `fragment`.
void expect_error(const std::string& bytes, const std::string& fragment) {
  TempDir dir;
  write_file(dir / "bad.safetensors", bytes);
  try {
    SafetensorsFile f(dir / "bad.safetensors");
    FAIL() << "no error; expected one mentioning: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << "names the file: " << e.what();
  }
}

TEST(Safetensors, WriterAndReaderRoundTrip) {
  TempDir dir;
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const uint16_t b[3] = {0x3c00, 0x4000, 0xc000};
  write_safetensors(dir / "t.safetensors",
                    {{"a", DType::F32, {2, 3}, a}, {"b.half", DType::F16, {3}, b}}, {{"format", "pt"}});
  const SafetensorsFile f(dir / "t.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorView& ta = f.tensors().at("a");
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta.dtype, DType::F32);
  EXPECT_EQ(std::memcmp(ta.data, a, sizeof a), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta.data) % 8, 0u) << "data is 8-byte aligned";
  EXPECT_EQ(f.tensors().at("b.half").dtype, DType::F16);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_FALSE(std::filesystem::exists(dir / "t.safetensors.tmp"));
}

TEST(Safetensors, ReadsTheReferenceModel) {
  const SafetensorsFile f(test::neo_tiny_dir() / "model.safetensors");
  EXPECT_EQ(f.tensors().at("transformer.wte.weight").shape, (std::vector<int64_t>{50257, 32}));
  EXPECT_FALSE(f.tensors().count("lm_head.weight")) << "GPT-Neo ties its head to wte";
}

TEST(Safetensors, RejectsAFileShorterThanItsHeaderLength) {
  expect_error("abc", "truncated");
}

TEST(Safetensors, RejectsAHeaderLengthPastTheEndOfTheFile) {
  expect_error(make_file("{}", "", 1000), "runs past the end of the file");
}

TEST(Safetensors, RejectsAHeaderThatIsNotJson) {
  expect_error(make_file("{not json", ""), "not valid JSON");
}

TEST(Safetensors, RejectsDataOffsetsPastTheEndOfTheFile) {
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')),
               "run past the end of the data");
}

TEST(Safetensors, RejectsASizeThatDoesNotMatchTheShape) {
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
               "needs 12");
}

TEST(Safetensors, RejectsAnUnknownDtype) {
  expect_error(make_file(R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0')),
               "unsupported dtype");
}

TEST(Safetensors, RejectsMalformedEntries) {
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""), "invalid dimension");
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[1]}})", ""), "data_offsets");
  expect_error(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0')),
               "run past");
  expect_error(make_file(R"([1,2])", ""), "not a JSON object");
  // A shape whose byte size overflows 64 bits.
  expect_error(make_file(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", ""),
               "needs more than");
}

TEST(Safetensors, TruncatingARealFileAnywhereGivesAnError) {
  const std::string full = test::read_file(test::neo_tiny_dir() / "model.safetensors");
  for (size_t cut : {size_t(0), size_t(7), size_t(100), full.size() / 2, full.size() - 1}) {
    TempDir dir;
    write_file(dir / "m.safetensors", full.substr(0, cut));
    EXPECT_THROW(SafetensorsFile(dir / "m.safetensors"), Error) << "cut at " << cut;
  }
}

TEST(Safetensors, MissingFileIsAnError) {
  EXPECT_THROW(SafetensorsFile("/nonexistent/model.safetensors"), Error);
}

}  // namespace
}  // namespace gptneo
