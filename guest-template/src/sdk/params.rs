//! Build parameters: the `--param key=value` pairs, with typed getters and
//! defaults.

/// The build parameters given on the command line (`--param m=32`).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    /// The raw value of `key`, if given (the last one wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Panics with a message naming the parameter when the value does not
    /// parse; the host reports the panic as the candidate's verdict.
    fn parsed<T: std::str::FromStr>(&self, key: &str, default: T, kind: &str) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => raw
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("parameter {key}: expected {kind}, got {raw:?}")),
        }
    }

    pub fn usize(&self, key: &str, default: usize) -> usize {
        self.parsed(key, default, "a non-negative integer")
    }

    pub fn u64(&self, key: &str, default: u64) -> u64 {
        self.parsed(key, default, "a non-negative integer")
    }

    pub fn f32(&self, key: &str, default: f32) -> f32 {
        self.parsed(key, default, "a number")
    }

    pub fn bool(&self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::trim) {
            None => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(raw) => panic!("parameter {key}: expected true or false, got {raw:?}"),
        }
    }

    pub fn str<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Every pair, in the order given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn typed_getters_and_defaults() {
        let p = params(&[
            ("m", "32"),
            ("alpha", "1.2"),
            ("prefetch", "off"),
            ("m", "24"),
        ]);
        assert_eq!(p.usize("m", 16), 24, "the last value wins");
        assert_eq!(p.usize("ef_construction", 200), 200);
        assert_eq!(p.f32("alpha", 1.0), 1.2);
        assert!(!p.bool("prefetch", true));
        assert_eq!(p.str("name", "hnsw"), "hnsw");
    }

    #[test]
    #[should_panic(expected = "parameter m: expected a non-negative integer, got \"lots\"")]
    fn bad_value_names_the_parameter() {
        params(&[("m", "lots")]).usize("m", 16);
    }
}
