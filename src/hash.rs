//! Stable, unkeyed hashes for seeding and sampling. std's hasher is randomly keyed per
//! process, which would defeat `--seed`; these give the same answer in every run.

/// FNV-1a of a string: mixes a name (proxy, toxic) into a seed or a draw.
pub fn fnv1a_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// SplitMix64's finalizer: spreads the bits of `x` evenly, so nearby inputs give unrelated
/// outputs.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hashes are fixed functions: the same input gives the same output in every process.
    #[test]
    fn hashes_are_stable() {
        assert_eq!(fnv1a_str(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_str("a"), 0xaf63dc4c8601ec8c);
        assert_ne!(splitmix(1), splitmix(2));
        assert_eq!(splitmix(0), 0xe220a8397b1dcdaf);
    }
}
