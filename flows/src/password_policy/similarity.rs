//! Kratos' identifier-similarity rule (`identifier_similarity_check_enabled`).
//!
//! Mirrors `selfservice/strategy/password/validator.go`:
//!
//! * both operands are lower-cased (Go `strings.ToLower`);
//! * the password is "too similar" when the **byte-wise** Levenshtein distance
//!   (`github.com/arbovm/levenshtein` works on bytes) is `< 5`, or when the
//!   longest common substring divided by the password's byte length is `> 0.5`;
//! * the check is skipped for an empty identifier and, as upstream does since the
//!   algorithmic-complexity fix, when either operand (raw or lower-cased) is longer
//!   than [`MAX_SIMILARITY_CHECK_LENGTH`] bytes. This keeps the O(n·m) work bounded
//!   no matter how long the submitted password is.

/// Kratos: `minIdentifierPasswordDist`.
pub const MIN_IDENTIFIER_PASSWORD_DISTANCE: usize = 5;

/// Kratos: `maxIdentifierSimilarityCheckLength` (bytes).
pub const MAX_SIMILARITY_CHECK_LENGTH: usize = 256;

/// Returns `true` when Kratos would reject `password` as too similar to `identifier`.
///
/// Work is bounded: operands longer than [`MAX_SIMILARITY_CHECK_LENGTH`] bytes are
/// never compared (and are reported as not similar, exactly like Kratos).
pub fn similar(identifier: &str, password: &str) -> bool {
    if identifier.is_empty()
        || identifier.len() > MAX_SIMILARITY_CHECK_LENGTH
        || password.len() > MAX_SIMILARITY_CHECK_LENGTH
    {
        return false;
    }
    let id = identifier.to_lowercase();
    let pw = password.to_lowercase();
    // Lower-casing can expand a string (e.g. 'İ'), so re-check the bound.
    if id.len() > MAX_SIMILARITY_CHECK_LENGTH || pw.len() > MAX_SIMILARITY_CHECK_LENGTH {
        return false;
    }

    if levenshtein_below(
        id.as_bytes(),
        pw.as_bytes(),
        MIN_IDENTIFIER_PASSWORD_DISTANCE,
    ) {
        return true;
    }

    // Kratos: float32(lcs) / float32(len(password)) > 0.5. With an empty password Go
    // computes NaN (or +Inf for lcs > 0, impossible here) and the comparison is false.
    if pw.is_empty() {
        return false;
    }
    let lcs = lcs_length_kratos(&id, &pw);
    2 * lcs > pw.len()
}

/// `true` when the byte-wise Levenshtein distance of `a` and `b` is `< limit`.
///
/// Exits early when the length difference alone already reaches `limit` (the distance
/// is at least the length difference).
pub(crate) fn levenshtein_below(a: &[u8], b: &[u8], limit: usize) -> bool {
    if a.len().abs_diff(b.len()) >= limit {
        return false;
    }
    levenshtein(a, b) < limit
}

/// Byte-wise Levenshtein distance with O(min(n, m)) memory (same as arbovm/levenshtein).
pub(crate) fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut column: Vec<usize> = (0..=short.len()).collect();
    for (x, &lc) in long.iter().enumerate() {
        let mut last_diag = x;
        if let Some(first) = column.first_mut() {
            *first = x + 1;
        }
        for y in 1..=short.len() {
            let old_diag = column.get(y).copied().unwrap_or(0);
            let cost = usize::from(short.get(y - 1) != Some(&lc));
            let up = old_diag + 1;
            let left = column.get(y - 1).copied().unwrap_or(0) + 1;
            let value = up.min(left).min(last_diag + cost);
            if let Some(slot) = column.get_mut(y) {
                *slot = value;
            }
            last_diag = old_diag;
        }
    }
    column.last().copied().unwrap_or(0)
}

/// Longest common substring length exactly as Kratos' `lcsLength` computes it.
///
/// Kratos iterates runes (`for i, x := range a`) but indexes its DP table by **byte**
/// offset, so the "previous cell" of a rune that follows a multi-byte rune is a
/// never-written continuation-byte cell (0). In effect runs of ASCII characters are
/// counted in full while every non-ASCII character restarts the run at 1. The result
/// counts characters, and the caller divides it by the password's byte length. This
/// function reproduces that precisely, using two rows instead of the full table.
pub(crate) fn lcs_length_kratos(a: &str, b: &str) -> usize {
    let width = b.len();
    // Row for byte offset i-1 of `a` (zero unless the previous rune was one byte wide).
    let mut prev = vec![0usize; width];
    let mut cur = vec![0usize; width];
    let mut greatest = 0usize;
    for (i, x) in a.char_indices() {
        cur.iter_mut().for_each(|c| *c = 0);
        for (j, y) in b.char_indices() {
            if x != y {
                continue;
            }
            let mut run = 1;
            if i != 0 && j != 0 {
                run = prev.get(j - 1).copied().unwrap_or(0) + 1;
            }
            greatest = greatest.max(run);
            if let Some(slot) = cur.get_mut(j) {
                *slot = run;
            }
        }
        if x.len_utf8() == 1 {
            std::mem::swap(&mut prev, &mut cur);
        } else {
            // Row i+len-1 is a continuation byte: Kratos never writes it.
            prev.iter_mut().for_each(|c| *c = 0);
        }
    }
    greatest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_matches_reference_values() {
        assert_eq!(levenshtein(b"", b""), 0);
        assert_eq!(levenshtein(b"abc", b""), 3);
        assert_eq!(levenshtein(b"", b"abc"), 3);
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein(b"flaw", b"lawn"), 2);
        assert_eq!(levenshtein(b"hello@example.com", b"hello@exam"), 7);
        // byte-wise: 'ä' is two bytes, so it differs from 'a' by two edits.
        assert_eq!(levenshtein("ä".as_bytes(), b"a"), 2);
    }

    #[test]
    fn lcs_ascii() {
        assert_eq!(lcs_length_kratos("hello@example.com", "h3ll0@example"), 8);
        assert_eq!(lcs_length_kratos("abc", "xyz"), 0);
        assert_eq!(lcs_length_kratos("", "xyz"), 0);
        assert_eq!(lcs_length_kratos("ab", "0000ab0000123"), 2);
    }

    #[test]
    fn lcs_reproduces_go_multibyte_quirk() {
        // Go counts "äöü" vs "äöü" as 1: each multi-byte rune restarts the run.
        assert_eq!(lcs_length_kratos("äöü", "äöü"), 1);
        // ASCII after a multi-byte rune also restarts; ASCII runs count fully.
        assert_eq!(lcs_length_kratos("äabc", "äabc"), 3);
        assert_eq!(lcs_length_kratos("abcä", "abcä"), 4);
    }

    #[test]
    fn early_exit_on_length_difference() {
        assert!(!levenshtein_below(b"a", b"abcdef", 5));
        assert!(levenshtein_below(b"abcd", b"abcdefgh", 5));
    }
}
