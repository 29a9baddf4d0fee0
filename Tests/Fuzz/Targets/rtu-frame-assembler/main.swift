import FuzzSupport
import Simulators

/// The RTU simulator's line reader: bytes in chunks, with a 3.5-character silence where a chunk's first byte says.
fuzz { input in
    var assembler = RTUFrameAssembler()
    var rest = input.bytes[...]
    while let header = rest.first {
        let chunk = rest.dropFirst().prefix(Int(header & 0x3F))
        _ = assembler.append(chunk)
        if header & 0x80 != 0 { _ = assembler.silence() }
        rest = rest.dropFirst(1 + chunk.count)
    }
    _ = assembler.silence()
}
