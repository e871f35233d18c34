//! One scheme for using the CPU's vector instructions, shared by the encoder's convolution
//! kernels ([`crate::encoder::kernels`]) and the decoder's numeric kernels
//! (`decoder::linalg`, `decoder::panel`): the best instruction set the CPU supports is
//! detected once at run time ([`level`]), and every kernel picks its variant from that.
//!
//! Kernels come in two forms. Portable loops that vectorise well are written once and compiled
//! for each level by `simd_fn!` (the decoder). Kernels that need hand-written intrinsics (the
//! encoder's depthwise and stem convolutions, AVX2 + FMA) check [`Level::avx2_fma`] and fall
//! back to their portable version. Nothing needs build flags.

/// The vector instruction sets kernels are compiled for, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 (F, BW, DQ, VL) together with AVX2 and FMA.
    Avx512,
    /// AVX2 and FMA.
    Avx2Fma,
    /// The baseline instructions of the target.
    Portable,
}

impl Level {
    /// Whether AVX2 and FMA are available at this level.
    pub fn avx2_fma(self) -> bool {
        matches!(self, Level::Avx512 | Level::Avx2Fma)
    }

    /// A short name for logs and benches.
    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2Fma => "avx2",
            Level::Portable => "portable",
        }
    }
}

/// The best [`Level`] this CPU supports, detected on the first call.
#[cfg(target_arch = "x86_64")]
pub fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let avx2_fma = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl");
        match (avx512, avx2_fma) {
            (true, true) => Level::Avx512,
            (false, true) => Level::Avx2Fma,
            _ => Level::Portable,
        }
    })
}

/// The best [`Level`] this CPU supports: only the baseline off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub fn level() -> Level {
    Level::Portable
}

/// Defines `pub(crate) fn NAME(..)` from a portable body and compiles it three times: for
/// AVX-512, for AVX2+FMA and for the baseline CPU, calling the variant of the CPU's
/// [`level`], so the loops vectorise to the full vector width without build flags. Results can
/// differ in the last bits between CPU kinds (FMA), never between runs on one machine.
macro_rules! simd_fn {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                match $crate::simd::level() {
                    // SAFETY: the CPU has every feature `avx512` was compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU has every feature `avx2` was compiled for.
                    $crate::simd::Level::Avx2Fma => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Portable => {}
                }
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use simd_fn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_is_detected_once_and_consistently() {
        let l = level();
        assert_eq!(l, level());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            l.avx2_fma(),
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        );
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(l, Level::Portable);
    }

    simd_fn! {
        /// A dot product through the macro, for the test below.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn simd_fn_gives_the_portable_result() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() <= 1e-3 * want.abs().max(1.0));
    }
}
