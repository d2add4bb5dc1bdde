//! DingTalk's markdown, as far as the bridge writes it.

/// `value`, text from scraped targets such as a label value, made inert in DingTalk
/// markdown: line breaks become spaces, so it cannot start a heading, list, quote or line
/// of its own, and `[ ] < > @` become their fullwidth forms `［ ］ ＜ ＞ ＠`, so it
/// cannot open a link, an image, an HTML tag or a mention, whatever markdown dialect
/// reads it (DingTalk documents no escape syntax). The `escape` filter of templates, and
/// what replies to commands show of labels and names.
pub fn escape(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '[' => '［',
            ']' => '］',
            '<' => '＜',
            '>' => '＞',
            '@' => '＠',
            other => other,
        })
        .collect()
}
