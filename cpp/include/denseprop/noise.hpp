// Gaussian noise from a counter-based generator: the noise of an optimizer step depends only on
// (seed, step), so an optimizer restored with its seed and step count continues the same stream.
//
//   words    SplitMix64 (Steele, Lea & Flood 2014) started at x = mix(mix(seed) + step):
//            word k of the step is mix(x + (k + 1) γ), γ = 0x9E3779B97F4A7C15
//   uniforms u = (top 53 bits (double) or 24 bits (float) + 1) / 2^53 or 2^24, in (0, 1]
//   normals  Box–Muller: r = √(−2 ln u₁), θ = 2π u₂ give r cos θ and r sin θ
//
// Values go in blocks of 2m (m = 512): words 2k and 2k+1 of a block are (u₁, u₂) of pair k,
// whose r cos θ is the block's value k and r sin θ its value m + k (a last, shorter block splits
// at half its length, rounded up). The halves keep the transcendental functions vectorised.
#pragma once

#include <algorithm>
#include <cstdint>

#include "types.hpp"

namespace denseprop {

inline std::uint64_t splitmix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <class T> T unit_interval(std::uint64_t bits) {
  if constexpr (sizeof(T) == 4)
    return T((bits >> 40) + 1) * T(1.0 / 16777216.0);  // 2^-24
  else
    return T((bits >> 11) + 1) * T(1.0 / 9007199254740992.0);  // 2^-53
}

// v[i] += stddev · N(0, 1) for i in [0, n), from the stream of (seed, step).
template <class T>
void add_gaussian_noise(T* v, Index n, T stddev, std::uint64_t seed, std::uint64_t step) {
  constexpr Index m = 512;
  constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;
  constexpr T two_pi = T(6.283185307179586476925286766559);
  Eigen::Array<T, m, 1> r, theta;
  std::uint64_t x = splitmix64(splitmix64(seed) + step);
  for (Index start = 0; start < n; start += 2 * m) {
    const Index pairs = std::min(m, (n - start + 1) / 2), rest = std::min(pairs, n - start - pairs);
    for (Index k = 0; k < pairs; ++k) {
      r[k] = unit_interval<T>(splitmix64(x += gamma));
      theta[k] = unit_interval<T>(splitmix64(x += gamma));
    }
    r.head(pairs) = stddev * (T(-2) * r.head(pairs).log()).sqrt();
    theta.head(pairs) *= two_pi;
    Vec<T>(v + start, pairs).array() += r.head(pairs) * theta.head(pairs).cos();
    Vec<T>(v + start + pairs, rest).array() += r.head(rest) * theta.head(rest).sin();
  }
}

}  // namespace denseprop
