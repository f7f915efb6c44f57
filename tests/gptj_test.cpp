// GPT-J against the Hugging Face reference (goldens/gptj-tiny.*): NLL,
// logits and argmax with whole-sequence and token-by-token (cached)
// decoding, greedy continuations cached and uncached, the `score` and
// `generate --json` CLI, the rotary embedding against the reference's
// formula, the padded vocabulary, and GPT-J read from a pytorch_model.bin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "gptneo/convert.h"
#include "gptneo/error.h"
#include "gptneo/generate.h"
#include "gptneo/model.h"
#include "gptneo/scoring.h"
#include "io/checkpoint.h"
#include "models/architecture.h"
#include "models/layers.h"
#include "pytorch_bin_writer.h"
#include "test_support.h"

namespace gptneo {
namespace {

namespace fs = std::filesystem;
using test::doubles;
using test::ints;

constexpr double kNllTol = 1e-4;
constexpr double kLogitTol = 1e-3;
constexpr double kMarginTol = 1e-3;

fs::path gptj_dir() { return test::data_dir() / "gptj-tiny"; }
fs::path golden(const std::string& ext) { return test::data_dir() / "goldens" / ("gptj-tiny.golden." + ext); }

Model& gptj() {
  static std::unique_ptr<Model> m = Model::load(gptj_dir());
  return *m;
}

double margin(const float* row, int64_t n) {
  std::vector<float> v(row, row + n);
  std::partial_sort(v.begin(), v.begin() + 2, v.end(), std::greater<>());
  return double(v[0]) - double(v[1]);
}

struct GoldenSeq {
  std::vector<TokenId> ids;
  std::vector<double> nll;
  std::vector<int64_t> argmax, positions;
  std::vector<double> logits;  // rows at `positions`
};

std::vector<GoldenSeq> golden_sequences() {
  const SafetensorsFile g(golden("safetensors"));
  std::vector<GoldenSeq> out;
  for (int s = 0;; ++s) {
    const std::string p = "seq" + std::to_string(s) + ".";
    if (!g.tensors().count(p + "input_ids")) break;
    GoldenSeq q;
    const auto ids = ints(g.tensors().at(p + "input_ids"));
    q.ids.assign(ids.begin(), ids.end());
    q.nll = doubles(g.tensors().at(p + "nll"));
    q.argmax = ints(g.tensors().at(p + "argmax"));
    q.positions = ints(g.tensors().at(p + "positions"));
    q.logits = doubles(g.tensors().at(p + "logits_at"));
    out.push_back(std::move(q));
  }
  return out;
}

// Checks rows of logits (one per position of `q`) against the golden.
void check_against_golden(const GoldenSeq& q, const std::function<const float*(size_t)>& row_at, int64_t V) {
  for (size_t t = 0; t + 1 < q.ids.size(); ++t)
    EXPECT_NEAR(token_nll({row_at(t), size_t(V)}, q.ids[t + 1]), q.nll[t], kNllTol) << "position " << t;
  for (size_t t = 0; t < q.ids.size(); ++t) {
    const float* row = row_at(t);
    if (margin(row, V) > kMarginTol + 2 * kLogitTol) {
      EXPECT_EQ(std::max_element(row, row + V) - row, q.argmax[t]) << "position " << t;
    }
  }
  for (size_t i = 0; i < q.positions.size(); ++i) {
    const float* row = row_at(static_cast<size_t>(q.positions[i]));
    double worst = 0;
    for (int64_t v = 0; v < V; ++v) worst = std::max(worst, std::abs(row[v] - q.logits[i * V + v]));
    EXPECT_LE(worst, kLogitTol) << "logits at position " << q.positions[i];
  }
}

TEST(GptJ, ConfigIsReadFromTheGptjFields) {
  const ModelConfig& c = gptj().config();
  EXPECT_EQ(c.model_type, "gptj");
  EXPECT_EQ(c.vocab_size, 50400);
  EXPECT_EQ(c.hidden_size, 16);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.rotary_dim, 4);
  EXPECT_EQ(c.intermediate_size, 64);  // n_inner null: 4 × n_embd
  EXPECT_EQ(c.max_positions, 128);
  EXPECT_EQ(c.attention, std::vector<AttentionKind>(2, AttentionKind::Global));
}

TEST(GptJ, WholeSequenceForwardMatchesTheGolden) {
  const int64_t V = gptj().config().vocab_size;
  const auto seqs = golden_sequences();
  ASSERT_EQ(seqs.size(), 4u);
  for (size_t s = 0; s < seqs.size(); ++s) {
    SCOPED_TRACE("sequence " + std::to_string(s));
    const GoldenSeq& q = seqs[s];
    KVCache cache = gptj().new_cache(static_cast<int64_t>(q.ids.size()));
    const SequenceChunk chunk{&cache, q.ids, true};
    const Logits logits = gptj().forward({&chunk, 1});
    check_against_golden(q, [&](size_t t) { return logits.row(static_cast<int64_t>(t)); }, V);
  }
}

TEST(GptJ, TokenByTokenCachedDecodingMatchesTheGolden) {
  const int64_t V = gptj().config().vocab_size;
  const GoldenSeq q = golden_sequences().at(2);  // 50 tokens
  KVCache cache = gptj().new_cache(static_cast<int64_t>(q.ids.size()));
  std::vector<float> rows;
  for (size_t t = 0; t < q.ids.size(); ++t) {
    const SequenceChunk chunk{&cache, {&q.ids[t], 1}};
    const Logits l = gptj().forward({&chunk, 1});
    rows.insert(rows.end(), l.data.begin(), l.data.end());
  }
  check_against_golden(q, [&](size_t t) { return rows.data() + t * V; }, V);
}

// Prompt and greedy continuation of the golden; `exact` = steps before the first near tie.
struct Greedy {
  std::string name;
  std::vector<TokenId> prompt, ref;
  size_t exact = 0;
};

std::vector<Greedy> golden_greedy() {
  std::vector<Greedy> out;
  const nlohmann::json doc = test::read_json(golden("json"));  // items() refers into it: keep it alive
  for (const auto& [name, g] : doc["greedy"].items()) {
    Greedy x{name, g["prompt"].get<std::vector<TokenId>>(), g["greedy"].get<std::vector<TokenId>>()};
    const auto margins = g["margins"].get<std::vector<double>>();
    x.exact = 0;
    while (x.exact < margins.size() && margins[x.exact] >= kMarginTol) ++x.exact;
    out.push_back(std::move(x));
  }
  return out;
}

TEST(GptJ, GreedyContinuationsMatchCachedAndUncached) {
  for (const Greedy& g : golden_greedy()) {
    SCOPED_TRACE(g.name);
    // Cached: the decode loop.
    GenerateOptions options;
    options.max_new_tokens = static_cast<int64_t>(g.ref.size());
    options.sampling.greedy = true;
    options.stop_at_eos = false;
    const GenerateResult r = generate(gptj(), g.prompt, options);
    ASSERT_EQ(r.tokens.size(), g.ref.size());
    for (size_t t = 0; t < g.exact; ++t) ASSERT_EQ(r.tokens[t], g.ref[t]) << "cached, step " << t;
    // Uncached: a fresh full forward pass over the whole text at every step.
    std::vector<TokenId> text = g.prompt;
    for (size_t t = 0; t < g.exact; ++t) {
      KVCache cache = gptj().new_cache(static_cast<int64_t>(text.size()));
      const SequenceChunk chunk{&cache, text};
      const Logits l = gptj().forward({&chunk, 1});
      const auto best = static_cast<TokenId>(std::max_element(l.row(0), l.row(0) + l.vocab) - l.row(0));
      ASSERT_EQ(best, g.ref[t]) << "uncached, step " << t;
      text.push_back(best);
    }
  }
}

std::string join(const std::vector<TokenId>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

TEST(GptJ, ScoreCliMatchesTheGolden) {
  const GoldenSeq q = golden_sequences().at(2);
  const auto r = test::run_cli({"-q", "score", "-m", gptj_dir().string(), "--ids", join(q.ids)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto nll = j["nll"].get<std::vector<double>>();
  const auto argmax = j["argmax"].get<std::vector<int64_t>>();
  ASSERT_EQ(nll.size(), q.ids.size() - 1);
  ASSERT_EQ(argmax.size(), q.ids.size());
  for (size_t t = 0; t < nll.size(); ++t) EXPECT_NEAR(nll[t], q.nll[t], kNllTol) << "position " << t;
  // Where the reference's margin is clear (the stored rows), the argmax agrees.
  const int64_t V = 50400;
  for (size_t i = 0; i < q.positions.size(); ++i) {
    const double* row = q.logits.data() + i * V;
    std::vector<float> f(row, row + V);
    if (margin(f.data(), V) > kMarginTol) {
      EXPECT_EQ(argmax[q.positions[i]], q.argmax[q.positions[i]]);
    }
  }
}

TEST(GptJ, GenerateJsonCliMatchesTheGreedyGolden) {
  for (const Greedy& g : golden_greedy()) {
    SCOPED_TRACE(g.name);
    const auto r = test::run_cli({"-q", "generate", "-m", gptj_dir().string(), "--prompt-ids", join(g.prompt),
                                  "--greedy", "--ignore-eos", "--json", "-n", std::to_string(g.ref.size())});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const auto tokens = j["tokens"].get<std::vector<TokenId>>();
    ASSERT_EQ(tokens.size(), g.ref.size());
    for (size_t t = 0; t < g.exact; ++t) EXPECT_EQ(tokens[t], g.ref[t]) << "step " << t;
    EXPECT_EQ(j["prompt_tokens"].get<std::vector<TokenId>>(), g.prompt);
  }
}

// ---- rotary embedding ------------------------------------------------------------

// transformers' GPT-J rotary, written out as its Python reads:
//   inv_freq = 1 / 10000 ** (arange(0, dim, 2) / dim);  angle = pos * inv_freq
//   sin, cos repeated interleaved (repeat_interleave(…, 2));
//   rotate_every_two(x) = stack((-x[1::2], x[::2]), -1).flatten()
//   x_rot = x * cos + rotate_every_two(x) * sin   on the first rotary_dim dims of each head.
std::vector<float> reference_rotary(std::vector<float> v, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                                    int64_t pos) {
  std::vector<float> sin_r(rotary_dim), cos_r(rotary_dim);
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const float inv = 1.0f / std::pow(10000.0f, float(2 * i) / float(rotary_dim));
    const float a = float(pos) * inv;
    sin_r[2 * i] = sin_r[2 * i + 1] = std::sin(a);
    cos_r[2 * i] = cos_r[2 * i + 1] = std::cos(a);
  }
  for (int64_t h = 0; h < heads; ++h) {
    float* x = v.data() + h * head_dim;
    std::vector<float> rot(rotary_dim);
    for (int64_t i = 0; i < rotary_dim / 2; ++i) {
      rot[2 * i] = -x[2 * i + 1];
      rot[2 * i + 1] = x[2 * i];
    }
    for (int64_t d = 0; d < rotary_dim; ++d) x[d] = x[d] * cos_r[d] + rot[d] * sin_r[d];
  }
  return v;
}

TEST(GptJ, RotaryIsTheInterleavedRotateEveryTwoForm) {
  const int64_t heads = 2, head_dim = 8, rotary_dim = 4;
  std::vector<float> v(heads * head_dim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * float(i) - 0.5f;
  for (const int64_t pos : {0, 1, 7, 127, 2047}) {
    SCOPED_TRACE(pos);
    std::vector<float> ours = v;
    apply_rotary(ours.data(), heads, head_dim, rotary_dim, pos);
    const std::vector<float> ref = reference_rotary(v, heads, head_dim, rotary_dim, pos);
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(ours[i], ref[i], 2e-6f) << "element " << i;
    // Dimensions past rotary_dim are untouched.
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t d = rotary_dim; d < head_dim; ++d) EXPECT_EQ(ours[h * head_dim + d], v[h * head_dim + d]);
  }
  // Not GPT-NeoX's rotate-half: at position 1 that would pair (x0, x2), not (x0, x1).
  std::vector<float> ours = v;
  apply_rotary(ours.data(), heads, head_dim, rotary_dim, 1);
  const float neox0 = v[0] * std::cos(1.0f) - v[2] * std::sin(1.0f);
  EXPECT_GT(std::abs(ours[0] - neox0), 1e-3f);
}

// ---- the padded vocabulary -----------------------------------------------------------

// gptj-tiny with lm_head.bias raised at `id`, so that `id` is the argmax everywhere.
void write_biased_gptj(const fs::path& dir, TokenId id) {
  const Checkpoint ck = Checkpoint::open(gptj_dir());
  std::map<std::string, std::vector<float>> values;
  std::map<std::string, FloatTensor> tensors;
  for (const auto& [name, v] : ck.tensors()) {
    auto& f = values[name];
    f.resize(static_cast<size_t>(v.numel()));
    convert_to_f32(v.dtype, v.data, f.size(), f.data());
    if (name == "lm_head.bias") f[static_cast<size_t>(id)] += 100.0f;
    tensors[name] = {v.shape, f.data()};
  }
  save_model(dir, test::read_file(gptj_dir() / "config.json"), tensors);
}

TEST(GptJ, ScoreSeesPaddedIdsButGenerationNeverEmitsThem) {
  EXPECT_EQ(generation_vocab_size(gptj().config()), 50257);
  test::TempDir d;
  write_biased_gptj(d.path(), 50300);
  const std::vector<TokenId> prompt = {17144, 42, 7};
  // score: the true argmax over all 50400 logits is the padding id.
  const auto s = test::run_cli({"-q", "score", "-m", d.path().string(), "--ids", join(prompt)});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const nlohmann::json scored = nlohmann::json::parse(s.out);
  for (const auto& a : scored["argmax"]) EXPECT_EQ(a.get<int64_t>(), 50300);
  // generate without a tokenizer, greedy and sampled: never an id >= 50257.
  for (const std::vector<std::string>& mode : {std::vector<std::string>{"--greedy"},
                                              std::vector<std::string>{"--temperature", "5", "--top-p", "1",
                                                                       "--seed", "3"}}) {
    std::vector<std::string> args = {"-q", "generate", "-m", d.path().string(), "--prompt-ids", join(prompt),
                                     "--json", "--ignore-eos", "-n", "30"};
    args.insert(args.end(), mode.begin(), mode.end());
    const auto g = test::run_cli(args);
    ASSERT_EQ(g.exit_code, 0) << g.err;
    const auto tokens = nlohmann::json::parse(g.out)["tokens"].get<std::vector<TokenId>>();
    ASSERT_EQ(tokens.size(), 30u);
    for (const TokenId t : tokens) EXPECT_LT(t, 50257);
  }
}

TEST(GptJ, GenerationVocabularyRuleLeavesOtherModelsWhole) {
  ModelConfig neo;
  neo.vocab_size = 50257;
  neo.eos_token_id = 50256;
  EXPECT_EQ(generation_vocab_size(neo), 50257);
  ModelConfig bytes;  // a byte-level model whose end-of-text id is 0
  bytes.vocab_size = 256;
  bytes.eos_token_id = 0;
  EXPECT_EQ(generation_vocab_size(bytes), 256);
  ModelConfig padded_other_eos;
  padded_other_eos.vocab_size = 50400;
  padded_other_eos.eos_token_id = 2;
  EXPECT_EQ(generation_vocab_size(padded_other_eos), 50400);
}

// ---- loading ---------------------------------------------------------------------

TEST(GptJ, ReadsTheReleasedBinLayoutWithMaskBuffersAndGivesIdenticalLogits) {
  // The released GPT-J files are pytorch_model.bin with attn.bias /
  // attn.masked_bias buffers in every layer.
  const Checkpoint ck = Checkpoint::open(gptj_dir());
  std::vector<std::string> names;
  for (const auto& [name, v] : ck.tensors()) names.push_back(name);
  const std::vector<uint8_t> mask(128 * 128, 1);
  const float masked_bias = -1e9f;
  // Every tensor in a storage of its own, plus the buffers.
  test::TempDir d;
  fs::copy_file(gptj_dir() / "config.json", d / "config.json");
  {
    std::vector<test::TorchTensor> tensors;
    std::vector<std::pair<std::string, std::string>> records;
    int key = 0;
    for (const auto& name : names) {
      const TensorView& v = ck.get(name);
      std::vector<int64_t> strides(v.shape.size());
      int64_t stride = 1;
      for (size_t i = v.shape.size(); i-- > 0;) strides[i] = stride, stride *= v.shape[i];
      tensors.push_back({name, std::to_string(key), "FloatStorage", v.numel(), 0, v.shape, strides});
      records.emplace_back("gptj/data/" + std::to_string(key++), std::string(reinterpret_cast<const char*>(v.data), v.nbytes));
    }
    for (int l = 0; l < 2; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".attn.";
      tensors.push_back({p + "bias", std::to_string(key), "BoolStorage", 128 * 128, 0, {1, 1, 128, 128}, {16384, 16384, 128, 1}});
      records.emplace_back("gptj/data/" + std::to_string(key++), std::string(mask.begin(), mask.end()));
      tensors.push_back({p + "masked_bias", std::to_string(key), "FloatStorage", 1, 0, {}, {}});
      records.emplace_back("gptj/data/" + std::to_string(key++), std::string(reinterpret_cast<const char*>(&masked_bias), 4));
    }
    records.insert(records.begin(), {"gptj/data.pkl", test::torch_pickle(tensors, true)});
    test::write_file(d / "pytorch_model.bin", test::zip_archive(records));
  }
  const auto from_bin = Model::load(d.path());
  const std::vector<TokenId> ids = {47972, 10732, 42043, 49904, 15411};
  auto logits = [&](Model& m) {
    KVCache cache = m.new_cache(8);
    const SequenceChunk chunk{&cache, ids, true};
    return m.forward({&chunk, 1}).data;
  };
  EXPECT_EQ(logits(*from_bin), logits(gptj()));
}

TEST(GptJ, BadConfigsAreClearErrors) {
  auto with = [](const std::function<void(nlohmann::json&)>& edit) {
    auto j = test::read_json(gptj_dir() / "config.json");
    edit(j);
    return j.dump();
  };
  auto expect = [](const std::string& text, const std::string& part) {
    try {
      ModelConfig::parse(text, "config.json");
      ADD_FAILURE() << "no error; expected " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect(with([](auto& j) { j["rotary_dim"] = 3; }), "rotary_dim");
  expect(with([](auto& j) { j["rotary_dim"] = 16; }), "rotary_dim");
  expect(with([](auto& j) { j["rotary_dim"] = nullptr; }), "rotary_dim");
  expect(with([](auto& j) { j.erase("n_embd"); }), "n_embd");
  expect(with([](auto& j) { j["activation_function"] = "swish_x"; }), "swish_x");
  expect(with([](auto& j) { j["model_type"] = "gpt_neox"; }), "gptj");  // the list of supported types
  // A GPT-J folder missing its lm_head.bias names the tensor.
  test::TempDir d;
  const Checkpoint ck = Checkpoint::open(gptj_dir());
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, v] : ck.tensors())
    if (name != "lm_head.bias") tensors.push_back({name, v.dtype, v.shape, v.data});
  write_safetensors(d / "model.safetensors", tensors);
  fs::copy_file(gptj_dir() / "config.json", d / "config.json");
  try {
    Model::load(d.path());
    ADD_FAILURE() << "loaded without lm_head.bias";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.bias"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gptneo
