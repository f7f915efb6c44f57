#include "train/params.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gptneo/error.h"

namespace gptneo::training {

size_t ParamSet::add(const std::string& name, std::vector<int64_t> shape) {
  if (index_.count(name)) throw Error(fmt::format("parameter '{}' declared twice", name));
  ParamInfo p;
  p.name = name;
  p.numel = 1;
  for (int64_t d : shape) p.numel *= static_cast<size_t>(d);
  p.decay = shape.size() >= 2;
  p.shape = std::move(shape);
  p.offset = total_;
  total_ += p.numel;
  index_[name] = infos_.size();
  infos_.push_back(std::move(p));
  return infos_.back().offset;
}

void ParamSet::allocate() {
  values.assign(total_, 0.0f);
  grads.assign(total_, 0.0f);
}

const ParamInfo& ParamSet::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw Error(fmt::format("no parameter named '{}'", name));
  return infos_[it->second];
}

void ParamSet::zero_grads() { std::fill(grads.begin(), grads.end(), 0.0f); }

std::map<std::string, FloatTensor> ParamSet::tensors() const {
  std::map<std::string, FloatTensor> out;
  for (const ParamInfo& p : infos_) out[p.name] = FloatTensor{p.shape, values.data() + p.offset};
  return out;
}

// ---- Rng ---------------------------------------------------------------------

namespace {
uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

}  // namespace gptneo::training
