//! Train/dev/test splits: from a dataset's split files, or a deterministic hash of the name.

use serde::{Deserialize, Serialize};

/// Which part of the dataset an image belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
    /// The dataset has split files and this image is in none of them.
    None,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
            Split::None => "none",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "dev" | "val" | "validation" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(format!(
                "unknown split '{other}' (expected train, dev or test)"
            )),
        }
    }
}

/// Fractions for hash-based splits (used when a dataset has no split files).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub dev: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            train: 0.8,
            dev: 0.1,
            test: 0.1,
        }
    }
}

impl SplitFractions {
    /// Parses "80/10/10" or "0.8,0.1,0.1"; the three parts are normalised to sum to 1.
    pub fn parse(s: &str) -> Result<SplitFractions, String> {
        let parts: Vec<&str> = s.split(['/', ',']).map(str::trim).collect();
        if parts.len() != 3 {
            return Err(format!(
                "split fractions '{s}': expected three numbers such as 80/10/10"
            ));
        }
        let mut v = [0.0f64; 3];
        for (slot, p) in v.iter_mut().zip(&parts) {
            *slot = p
                .parse::<f64>()
                .map_err(|_| format!("split fractions '{s}': '{p}' is not a number"))?;
            if !slot.is_finite() || *slot < 0.0 {
                return Err(format!("split fractions '{s}': '{p}' must be zero or more"));
            }
        }
        let total: f64 = v.iter().sum();
        if total <= 0.0 {
            return Err(format!("split fractions '{s}': they add up to zero"));
        }
        Ok(SplitFractions {
            train: v[0] / total,
            dev: v[1] / total,
            test: v[2] / total,
        })
    }
}

/// FNV-1a, 64 bit: stable across platforms and versions (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Assigns a split from a hash of the image name: the same name always lands in the same split.
pub fn split_by_hash(name: &str, fractions: &SplitFractions) -> Split {
    // Mix the high bits down; take 53 bits as a uniform number in [0, 1).
    let h = fnv1a(name.as_bytes());
    let h = h ^ (h >> 29);
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let total = fractions.train + fractions.dev + fractions.test;
    let (train, dev) = if total > 0.0 {
        (fractions.train / total, fractions.dev / total)
    } else {
        (1.0, 0.0)
    };
    if u < train {
        Split::Train
    } else if u < train + dev {
        Split::Dev
    } else {
        Split::Test
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_split_is_deterministic_and_close_to_the_fractions() {
        let f = SplitFractions::default();
        let mut counts = [0usize; 3];
        for i in 0..10_000 {
            let name = format!("IMG_{i:05}.jpg");
            let s = split_by_hash(&name, &f);
            assert_eq!(s, split_by_hash(&name, &f));
            counts[match s {
                Split::Train => 0,
                Split::Dev => 1,
                _ => 2,
            }] += 1;
        }
        assert!((7700..8300).contains(&counts[0]), "{counts:?}");
        assert!((800..1200).contains(&counts[1]), "{counts:?}");
        assert!((800..1200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn fractions_parse() {
        let f = SplitFractions::parse("70/20/10").unwrap();
        assert!((f.train - 0.7).abs() < 1e-12 && (f.test - 0.1).abs() < 1e-12);
        assert!(SplitFractions::parse("1,2").is_err());
        assert!(SplitFractions::parse("a/b/c").is_err());
        assert!(SplitFractions::parse("0/0/0").is_err());
    }
}
