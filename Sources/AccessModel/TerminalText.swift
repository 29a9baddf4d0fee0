/// Text from devices, brokers and files made safe for an operator's terminal (issue 7, finding 11).
///
/// A subject such as `"\u{1B}[2J"` or `"\u{1B}]0;title\u{07}"` would clear the screen or retitle the window if
/// printed raw by `tail`, `probe`, `status` or the log. Every human output passes through `escaped`, which shows
/// control characters as visible escapes and leaves all other text, Chinese included, as it is.
public enum TerminalText {
    /// C0 controls (including ESC, BEL, CR, LF, TAB), DEL and C1 controls as `\e`, `\a`, `\n`, `\t`, `\r` or
    /// `\u{XX}`; the line and paragraph separators U+2028 and U+2029 (a line break to JavaScript, log viewers and
    /// editors) and the bidirectional overrides and isolates (which can hide or reorder text) as `\u{XXXX}`.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar.value {
            case 0x1B: out += "\\e"
            case 0x07: out += "\\a"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            default: out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            }
        }
        return out
    }

    /// Each line of `text` escaped, the line breaks kept: for multi-line output the program itself lays out.
    public static func escapedLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escaped(String($0)) }.joined(separator: "\n")
    }

    /// A JSON document made terminal-safe without changing what it means: DEL and C1 controls (which JSON allows
    /// raw inside strings) become `\u00XX` escapes; C0 controls are already escaped by every JSON writer (and
    /// outside strings only whitespace, which must stay).
    public static func jsonEscaped(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { (0x7F...0x9F).contains($0.value) }) else { return json }
        var out = ""
        for scalar in json.unicodeScalars {
            if (0x7F...0x9F).contains(scalar.value) {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028...0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
