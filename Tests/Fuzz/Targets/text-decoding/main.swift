import AccessModel
import FuzzSupport

/// Register strings as the record decoder decodes them: ASCII, UTF-8 and GB18030 (iconv), NUL-padded.
fuzz { input in
    let (choice, rest) = input.split(choices: TextEncoding.allCases.count)
    let encoding = TextEncoding.allCases[choice]
    if let text = try? encoding.decode(rest) {
        _ = try? encoding.encode(text, length: rest.count)
    }
}
