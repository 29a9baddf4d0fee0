import AccessModel
import Testing

@Suite struct TerminalTextTests {
    @Test func controlCharactersBecomeVisibleEscapesAndOtherTextStays() {
        #expect(TerminalText.escaped("\u{1B}[2J\u{1B}]0;pwned\u{07}P-1") == "\\e[2J\\e]0;pwned\\aP-1")
        #expect(TerminalText.escaped("a\u{7F}b\u{9B}c\u{0}d\r\n\t") == "a\\u{7F}b\\u{9B}c\\u{0}d\\r\\n\\t")
        #expect(TerminalText.escaped("plate 云A12345, hidden \u{202E}txt.exe") == "plate 云A12345, hidden \\u{202E}txt.exe")
        #expect(TerminalText.escaped("云A12345 P-0012") == "云A12345 P-0012")
        #expect(TerminalText.escapedLines("one\u{1B}\ntwo") == "one\\e\ntwo")
        #expect(TerminalText.escaped("a\u{2028}b\u{2029}c") == "a\\u{2028}b\\u{2029}c", "Unicode's line and paragraph separators")
    }

    @Test func jsonKeepsItsMeaningWithoutRawC1Controls() {
        #expect(TerminalText.jsonEscaped("{\"subject\":\"a\\u001b\u{9B}b\"}") == #"{"subject":"a\u001b\u009bb"}"#)
        #expect(TerminalText.jsonEscaped("{\n\"a\": 1}") == "{\n\"a\": 1}")
    }
}
