#include "train/data.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::training {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'G', 'N', 'T', 'O', 'K', 'E', 'N', '1'};
constexpr const char* kCacheSuffix = ".gptneo-tokens";
// Files at least this large are tokenized one at a time on all threads.
constexpr uintmax_t kLargeFile = uintmax_t(4) << 20;

struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
};

uint64_t tokenizer_key(const Tokenizer& tok) {
  Fnv f;
  f.u64(static_cast<uint64_t>(tok.vocab_size()));
  f.u64(static_cast<uint64_t>(tok.eos_id()));
  for (TokenId i = 0; i < tok.vocab_size(); ++i) f.str(tok.token_bytes(i));
  return f.h;
}

bool is_cache_file(const fs::path& p) {
  const std::string s = p.filename().string();
  return s.size() > std::strlen(kCacheSuffix) && s.ends_with(kCacheSuffix);
}

// The documents under `path`: itself, or every file below it (not hidden, not
// caches) in sorted order.
std::vector<fs::path> list_files(const fs::path& path) {
  if (!fs::exists(path)) throw Error(fmt::format("data path {} does not exist", path.string()));
  if (!fs::is_directory(path)) return {path};
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && !is_cache_file(it->path())) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(fmt::format("data folder {} holds no files", path.string()));
  return files;
}

uint64_t files_key(uint64_t tok_key, const fs::path& root, const std::vector<fs::path>& files) {
  Fnv f;
  f.u64(tok_key);
  for (const fs::path& p : files) {
    f.str(fs::relative(p, fs::is_directory(root) ? root : root.parent_path()).string());
    f.u64(static_cast<uint64_t>(fs::file_size(p)));
    f.u64(static_cast<uint64_t>(fs::last_write_time(p).time_since_epoch().count()));
  }
  return f.h;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read data file {}", p.string()));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(fmt::format("error reading data file {}", p.string()));
  return s;
}

// Tokenizes the files (in parallel) and joins them, each followed by <|endoftext|>.
void tokenize_files(const std::vector<fs::path>& files, const Tokenizer& tok, int threads, TokenStream& out) {
  const size_t n = files.size();
  std::vector<std::vector<int32_t>> docs(n);
  std::vector<char> usable(n, 0);
  std::vector<int64_t> sizes(n, 0);
  auto process = [&](size_t i, bool parallel) {
    const std::string text = read_all(files[i]);
    sizes[i] = static_cast<int64_t>(text.size());
    if (utf8_first_invalid(text)) return;  // not text: skipped
    docs[i] = parallel ? tok.encode_parallel(text, threads) : tok.encode(text);
    usable[i] = 1;
  };
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      if (fs::file_size(files[i]) >= kLargeFile) continue;
      try {
        process(i, false);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  for (size_t i = 0; i < n; ++i)
    if (fs::file_size(files[i]) >= kLargeFile) process(i, true);

  const auto eos = static_cast<int32_t>(tok.eos_id());
  for (size_t i = 0; i < n; ++i) {
    out.bytes += sizes[i];
    if (!usable[i]) {
      ++out.skipped_files;
      continue;
    }
    out.tokens.insert(out.tokens.end(), docs[i].begin(), docs[i].end());
    out.tokens.push_back(eos);
    ++out.documents;
  }
}

}  // namespace

fs::path token_cache_path(const fs::path& data_path) {
  fs::path p = data_path;
  while (p.has_filename() == false && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();  // "dir/"
  return fs::path(p.string() + kCacheSuffix);
}

void write_token_file(const fs::path& path, uint64_t key, const std::vector<int32_t>& tokens) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(fmt::format("cannot write {}", tmp.string()));
    const uint64_t count = tokens.size();
    out.write(kMagic, sizeof kMagic);
    out.write(reinterpret_cast<const char*>(&key), sizeof key);
    out.write(reinterpret_cast<const char*>(&count), sizeof count);
    out.write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(count * sizeof(int32_t)));
    if (!out) throw Error(fmt::format("error writing {}", tmp.string()));
  }
  fs::rename(tmp, path);
}

bool read_token_file(const fs::path& path, uint64_t key, std::vector<int32_t>& tokens) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char magic[8];
  uint64_t file_key = 0, count = 0;
  in.read(magic, sizeof magic);
  in.read(reinterpret_cast<char*>(&file_key), sizeof file_key);
  in.read(reinterpret_cast<char*>(&count), sizeof count);
  if (!in || std::memcmp(magic, kMagic, sizeof kMagic) != 0) return false;
  if (key != 0 && file_key != key) return false;
  const uintmax_t expected = sizeof magic + 16 + count * sizeof(int32_t);
  if (fs::file_size(path) != expected)
    throw Error(fmt::format("token file {} is truncated or corrupt ({} bytes, expected {})", path.string(),
                            fs::file_size(path), expected));
  tokens.resize(count);
  in.read(reinterpret_cast<char*>(tokens.data()), static_cast<std::streamsize>(count * sizeof(int32_t)));
  if (!in) throw Error(fmt::format("error reading token file {}", path.string()));
  return true;
}

TokenStream load_token_stream(const std::vector<fs::path>& paths, const Tokenizer& tok,
                              const TokenizeOptions& options) {
  TokenStream out;
  if (paths.empty()) throw Error("no data given (--data PATH...)");
  const uint64_t tok_key = tokenizer_key(tok);
  for (const fs::path& path : paths) {
    std::vector<int32_t> ids;
    // A token file given as data.
    if (fs::is_regular_file(path) && read_token_file(path, 0, ids)) {
      for (const int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size())
          throw Error(fmt::format("token file {} holds id {}, outside the vocabulary of {}", path.string(), id,
                                  tok.vocab_size()));
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
      out.documents += std::count(ids.begin(), ids.end(), tok.eos_id());
      ++out.cached_paths;
      continue;
    }
    const std::vector<fs::path> files = list_files(path);
    const uint64_t key = files_key(tok_key, path, files);
    const fs::path cache = token_cache_path(path);
    if (options.use_cache && read_token_file(cache, key, ids)) {
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
      out.documents += std::count(ids.begin(), ids.end(), tok.eos_id());
      ++out.cached_paths;
      continue;
    }
    TokenStream part;
    tokenize_files(files, tok, options.threads, part);
    out.documents += part.documents;
    out.skipped_files += part.skipped_files;
    out.bytes += part.bytes;
    if (options.use_cache) {
      try {
        write_token_file(cache, key, part.tokens);
      } catch (const std::exception&) {
        // A read-only data folder: run without the cache.
        std::error_code ec;
        fs::remove(cache.string() + ".tmp", ec);
      }
    }
    out.tokens.insert(out.tokens.end(), part.tokens.begin(), part.tokens.end());
  }
  return out;
}

// ---- rows -------------------------------------------------------------------------

RowSet::RowSet(std::vector<int32_t> tokens, int64_t seq, int64_t first_row, int64_t rows)
    : tokens_(std::make_shared<const std::vector<int32_t>>(std::move(tokens))), seq_(seq), first_(first_row) {
  if (seq <= 0) throw Error("--seq must be positive");
  const int64_t available = tokens_->size() > 0 ? (static_cast<int64_t>(tokens_->size()) - 1) / seq : 0;
  rows_ = rows < 0 ? available - first_row : rows;
}

void RowSet::row(int64_t i, int32_t* inputs, int32_t* targets) const {
  const int32_t* t = tokens_->data() + (first_ + i) * seq_;
  std::memcpy(inputs, t, static_cast<size_t>(seq_) * sizeof(int32_t));
  std::memcpy(targets, t + 1, static_cast<size_t>(seq_) * sizeof(int32_t));
}

RowSet RowSet::split_tail(double fraction) {
  RowSet val;
  if (fraction <= 0) return val;
  int64_t n = static_cast<int64_t>(static_cast<double>(rows_) * fraction + 0.999999);
  n = std::clamp<int64_t>(n, 1, std::max<int64_t>(0, rows_ - 1));
  if (n <= 0) return val;
  val.tokens_ = tokens_;
  val.seq_ = seq_;
  val.first_ = first_ + rows_ - n;
  val.rows_ = n;
  rows_ -= n;
  return val;
}

// ---- shuffling ------------------------------------------------------------------------

Shuffler::Shuffler(int64_t rows, uint64_t seed) : rows_(rows), seed_(seed) {
  if (rows <= 0) throw Error("no training rows");
  shuffle();
}

void Shuffler::shuffle() {
  order_.resize(static_cast<size_t>(rows_));
  for (int64_t i = 0; i < rows_; ++i) order_[static_cast<size_t>(i)] = i;
  Rng rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch_));
  for (int64_t i = rows_ - 1; i > 0; --i) {  // Fisher-Yates
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
  }
}

int64_t Shuffler::next() {
  if (index_ == rows_) {
    ++epoch_;
    index_ = 0;
    shuffle();
  }
  return order_[static_cast<size_t>(index_++)];
}

void Shuffler::seek(int64_t epoch, int64_t index) {
  if (index < 0 || index > rows_) throw Error(fmt::format("bad data position {} of {} rows", index, rows_));
  epoch_ = epoch;
  index_ = index;
  shuffle();
}

}  // namespace gptneo::training
