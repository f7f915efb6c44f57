// CPython's `random.Random`, bit for bit: the Mersenne Twister MT19937 seeded
// the way `random.seed(int)` seeds it, `random()` with 53-bit resolution, and
// the index sequence of `choices(population, k=...)`. The harness draws its
// bootstrap resamples with it, so reproducing it reproduces its stderrs.
#pragma once

#include <array>
#include <cstdint>

namespace gptneo::eval {

class PythonRandom {
 public:
  // random.Random(seed) for a non-negative integer seed below 2**32.
  explicit PythonRandom(uint32_t seed);

  uint32_t next_u32();  // genrand_uint32
  double random();      // random.random()
  // One index of random.choices(range(n), k=...): floor(random() * n).
  int64_t choice_index(int64_t n) { return static_cast<int64_t>(random() * static_cast<double>(n)); }

 private:
  static constexpr int kN = 624;
  void init_genrand(uint32_t s);
  void init_by_array(const uint32_t* key, int length);
  void twist();

  std::array<uint32_t, kN> mt_{};
  int index_ = kN;
};

}  // namespace gptneo::eval
