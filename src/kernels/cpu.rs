//! The instruction sets the SIMD kernels dispatch on, detected once for the whole crate.
//!
//! Every kernel with explicit SIMD code has one path per [`Isa`] level and is tested on every
//! level the test machine can run ([`Isa::available`]), so a CPU with only AVX2 runs tested code.
//! Setting the environment variable `GSLAB_ISA` to `avx2` or `scalar` caps the level the crate
//! uses (for measuring or testing the lower paths on an AVX-512 machine); a level the CPU lacks
//! is never chosen.

use std::sync::OnceLock;

/// An x86-64 instruction-set level of the kernels, best first. Other architectures run
/// [`Isa::Scalar`] only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code (the compiler's baseline; `mul_add` may be a library call).
    Scalar,
    /// AVX2 and FMA: 256-bit vectors (AVX is implied).
    Avx2,
    /// AVX-512F and FMA: 512-bit vectors.
    Avx512,
}

impl Isa {
    /// The level the kernels use: the best one the CPU supports, capped by `GSLAB_ISA`
    /// (`avx512`, `avx2` or `scalar`; unset or unknown values cap nothing). Detected once.
    pub fn current() -> Isa {
        static LEVEL: OnceLock<Isa> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let best = Self::best_supported();
            match std::env::var("GSLAB_ISA").as_deref() {
                Ok("scalar") => Isa::Scalar,
                Ok("avx2") => best.min(Isa::Avx2),
                _ => best,
            }
        })
    }

    /// Every level this CPU can run, best first (for tests that check each path).
    pub fn available() -> Vec<Isa> {
        let best = Self::best_supported();
        [Isa::Avx512, Isa::Avx2, Isa::Scalar]
            .into_iter()
            .filter(|&l| l <= best)
            .collect()
    }

    /// The best level of this CPU, ignoring `GSLAB_ISA`.
    fn best_supported() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("fma") && has!("avx512f") {
                return Isa::Avx512;
            }
            if has!("fma") && has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_levels_are_ordered_and_include_current() {
        let a = Isa::available();
        assert_eq!(a.last(), Some(&Isa::Scalar));
        assert!(a.windows(2).all(|w| w[0] > w[1]));
        assert!(a.contains(&Isa::current()));
    }
}
