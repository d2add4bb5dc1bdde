//! How many alerts fit: a search over renders that are stopped at the limit, placed by
//! where the earlier renders say the limit lies.

/// Renders placed by where the earlier ones say the limit lies, after which the search
/// only halves: a safeguard against alerts of very uneven size.
const MAX_GUESSES: usize = 6;

/// What one render told [`alerts_that_fit`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Probe {
    /// The finished text has this many bytes.
    Finished { bytes: usize },
    /// The template passed the limit after reading this many alerts, and was stopped.
    Stopped { read: usize },
}

impl Probe {
    pub(super) fn fits(self, limit: usize) -> bool {
        matches!(self, Probe::Finished { bytes } if bytes <= limit)
    }
}

/// How many of `count` alerts to show, where `probe(k)` renders the first `k`: all of them
/// if they fit, otherwise a `k` that fits while `k + 1` does not (for a text that grows
/// with every alert, the most that fit), and 1 if not even one fits.
///
/// A render that passes the limit is stopped there, so no render costs much more than the
/// alerts that fit. The first shows all alerts. The next ones go where the last render
/// that passed the limit was stopped, or where a straight line through the sizes of
/// finished ones reaches the limit: with alerts of even size, the answer and one more.
/// After [`MAX_GUESSES`] the search halves the range that is left.
pub(super) fn alerts_that_fit(
    count: usize,
    limit: usize,
    mut probe: impl FnMut(usize) -> Probe,
) -> usize {
    let first = probe(count);
    if count <= 1 || first.fits(limit) {
        return count;
    }
    // The most alerts known to fit with the text's bytes, and the fewest known not to.
    let mut fit: Option<(usize, usize)> = None;
    let (mut too_many, mut too_long) = (count, first);
    // The last two finished renders, for the line.
    let mut finished: [Option<(usize, usize)>; 2] = [None, None];
    if let Probe::Finished { bytes } = first {
        finished[1] = Some((count, bytes));
    }
    let mut guesses = 0;
    loop {
        let most = fit.map_or(0, |(shown, _)| shown);
        if too_many == most + 1 {
            return most.max(1);
        }
        let guess = match too_long {
            _ if guesses == MAX_GUESSES => None,
            // The alert being written when the limit passed is the first that does not fit,
            // unless the template read them all first: after a render of all of them that
            // says nothing. A later render that was stopped on its last alert shown most
            // likely passed the limit with that alert.
            Probe::Stopped { read }
                if read < too_many || (read == too_many && too_many < count) =>
            {
                Some(read.saturating_sub(1))
            }
            Probe::Stopped { .. } => None,
            Probe::Finished { bytes } => match fit {
                Some(fit) => extrapolate(limit, Some((too_many, bytes)), fit),
                None => finished[1].and_then(|to| extrapolate(limit, finished[0], to)),
            },
        };
        if guess.is_some() {
            guesses += 1;
        }
        let shown = guess
            .unwrap_or(most + (too_many - most) / 2)
            .clamp(most + 1, too_many - 1);
        let result = probe(shown);
        if let Probe::Finished { bytes } = result {
            finished = [finished[1], Some((shown, bytes))];
            if bytes <= limit {
                fit = Some((shown, bytes));
                continue;
            }
        }
        (too_many, too_long) = (shown, result);
    }
}

/// Where the straight line through `from` and `to` (alerts shown, bytes), or through `to`
/// and the origin, reaches `limit` bytes: the most alerts that fit if each one adds as
/// many bytes as those did. `None` if the line does not rise.
fn extrapolate(limit: usize, from: Option<(usize, usize)>, to: (usize, usize)) -> Option<usize> {
    let wide = |n: usize| n as i128;
    let (from_shown, from_bytes) = from.unwrap_or((0, 0));
    let (shown, bytes) = (wide(to.0), wide(to.1));
    let (mut more_shown, mut more_bytes) = (shown - wide(from_shown), bytes - wide(from_bytes));
    if more_shown < 0 {
        (more_shown, more_bytes) = (-more_shown, -more_bytes);
    }
    if more_shown == 0 || more_bytes <= 0 {
        return None;
    }
    let at_limit = shown + ((wide(limit) - bytes) * more_shown).div_euclid(more_bytes);
    Some(usize::try_from(at_limit).unwrap_or(0))
}
