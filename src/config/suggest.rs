//! "Did you mean ...?" suggestions for misspelt flags, variables and configuration keys.
//!
//! Owns the choice of the nearest known name (edit distance from `strsim`). Pure: it knows
//! nothing about which names exist; callers pass the candidates.

/// Returns the candidate closest to `input`, if any is close enough to be a likely typo.
///
/// "Close enough" is an optimal-string-alignment distance (an edit, or swapping two
/// neighbouring letters, counts as one) of at most 2, or at most a quarter of the longer
/// name. Ties go to the earliest candidate, so callers list the most common names first.
pub(crate) fn nearest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let input = input.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = strsim::osa_distance(&input, &candidate.to_ascii_lowercase());
        if distance == 0 {
            // The same name in another case: that is the one.
            return Some(candidate);
        }
        let longest = input.chars().count().max(candidate.chars().count());
        let close = distance <= 2 || distance * 4 <= longest;
        if close && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "advertise-client-urls",
        "listen-client-urls",
        "ca-file",
        "trusted-ca-file",
        "name",
    ];

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(
            nearest("advertise-client-url", KEYS.iter().copied()),
            Some("advertise-client-urls")
        );
        assert_eq!(nearest("ca-fil", KEYS.iter().copied()), Some("ca-file"));
        assert_eq!(
            nearest("trusted-ac-file", KEYS.iter().copied()),
            Some("trusted-ca-file")
        );
        assert_eq!(nearest("NAME", KEYS.iter().copied()), Some("name"));
    }

    #[test]
    fn stays_silent_when_nothing_is_close() {
        assert_eq!(nearest("bogus-option-x", KEYS.iter().copied()), None);
        assert_eq!(nearest("zzzz", KEYS.iter().copied()), None);
    }
}
