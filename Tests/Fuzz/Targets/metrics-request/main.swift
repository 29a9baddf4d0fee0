import FuzzSupport
import Gateway

/// What a client sends the metrics endpoint, through the parser its server uses: the head's end, then the head.
fuzz { input in
    let bytes = Array(input.bytes)
    let end = HTTPRequestHead.headEnd(bytes) ?? bytes.count
    _ = HTTPRequestHead.parse(bytes.prefix(end))
}
