// Float format conversions: every half and bfloat16 value, and rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace gptneo {
namespace {

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The value of a half computed from its definition, for comparison.
double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(DType, EveryHalfConvertsExactlyAndRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    const double expected = half_value(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(double(f), expected) << "half 0x" << std::hex << h;
    ASSERT_EQ(f32_to_f16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(DType, FloatToHalfRoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);   // the largest half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);   // rounds to infinity
  EXPECT_EQ(f32_to_f16(-1e-9f), 0x8000);     // underflows to -0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(DType, BFloat16RoundsToNearestEvenAndKeepsNan) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), b);
  }
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808001)), 0x3f81);  // above the tie
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, ConvertToF32HandlesEveryStorageType) {
  const double d[3] = {1.5, -2.25, 1e-3};
  float out[3];
  convert_to_f32(DType::F64, d, 3, out);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[2], static_cast<float>(1e-3));
  const int64_t i[2] = {-7, 50256};
  convert_to_f32(DType::I64, i, 2, out);
  EXPECT_EQ(out[0], -7.0f);
  EXPECT_EQ(out[1], 50256.0f);
  const uint16_t bf[1] = {0x4049};  // 3.140625
  convert_to_f32(DType::BF16, bf, 1, out);
  EXPECT_EQ(out[0], 3.140625f);
}

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::BOOL}) {
    const auto parsed = dtype_from_name(dtype_name(t));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_FALSE(dtype_from_name("F8_E4M3").has_value());
}

}  // namespace
}  // namespace gptneo
