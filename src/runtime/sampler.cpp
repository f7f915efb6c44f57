// Random numbers, drawing from a distribution, and the speculative-sampling
// acceptance rule.
#include <algorithm>
#include <random>

#include "gptneo/error.h"
#include "gptneo/generate.h"

namespace gptneo {

double uniform01(Rng& rng) {
  // The top 53 bits: every double in [0, 1) with spacing 2^-53, identical on
  // every platform (std::uniform_real_distribution is not specified exactly).
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

uint64_t choice_seed(uint64_t seed, int index) {
  if (index == 0) return seed;
  // splitmix64 of (seed, index): unrelated streams for the other sequences.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Distribution::prob(TokenId id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return probs[i];
  return 0.0;
}

TokenId Distribution::sample(Rng& rng) const {
  if (ids.empty()) throw Error("sampling from an empty distribution");
  double u = uniform01(rng);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (u < probs[i]) return ids[i];
    u -= probs[i];
  }
  // Rounding left u just above the total: the last token with any mass.
  for (size_t i = ids.size(); i-- > 0;)
    if (probs[i] > 0) return ids[i];
  return ids.back();
}

SpeculativeVerdict speculative_accept(const Distribution& p, const Distribution& q, TokenId drafted, Rng& rng) {
  TokenId top = 0;
  for (TokenId id : p.ids) top = std::max(top, id);
  for (TokenId id : q.ids) top = std::max(top, id);
  std::vector<double> qd(static_cast<size_t>(top) + 1, 0.0);
  for (size_t i = 0; i < q.ids.size(); ++i) qd[q.ids[i]] = q.probs[i];
  const double px = p.prob(drafted);
  const double qx = drafted <= top ? qd[drafted] : 0.0;
  // Keep x with probability min(1, p(x)/q(x)).
  const double r = uniform01(rng);
  if (qx > 0 && r * qx < px) return {true, drafted};
  // Otherwise draw from the residual max(0, p - q), renormalised.
  Distribution residual;
  double total = 0;
  for (size_t i = 0; i < p.ids.size(); ++i) {
    const double d = p.probs[i] - qd[p.ids[i]];
    if (d > 0) {
      residual.ids.push_back(p.ids[i]);
      residual.probs.push_back(d);
      total += d;
    }
  }
  // p == q up to rounding: the residual is empty and p itself is exact.
  if (total <= 0) return {false, p.sample(rng)};
  for (double& v : residual.probs) v /= total;
  return {false, residual.sample(rng)};
}

}  // namespace gptneo
