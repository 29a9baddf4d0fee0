@testable import Simulators
import Testing

@Suite("RTU frame assembler")
struct RTUFrameAssemblerTests {
    @Test func framesAreCutByFunctionCodeLength() {
        var assembler = RTUFrameAssembler()
        let read = CRC16.appending(to: [1, 3, 0, 0, 0, 1])
        let write = CRC16.appending(to: [2, 16, 0, 106, 0, 2, 4, 0, 0, 0, 5])
        #expect(assembler.append(read.prefix(3)).isEmpty)
        #expect(assembler.append(read.dropFirst(3) + write) == [.frame(read), .frame(write)])
        #expect(assembler.isEmpty)
        // Function 23: read address and quantity, write address, quantity and byte count, then the values.
        let ackAndRead = CRC16.appending(to: [3, 23, 0, 100, 0, 106, 0, 106, 0, 2, 4, 0, 0, 0, 9])
        #expect(assembler.append(ackAndRead.prefix(10)).isEmpty)
        #expect(assembler.append(ackAndRead.dropFirst(10) + read) == [.frame(ackAndRead), .frame(read)], "complete without a silence")
        #expect(assembler.isEmpty)
    }

    @Test func badCRCDiscardsUntilSilence() {
        var assembler = RTUFrameAssembler()
        var bad = CRC16.appending(to: [1, 3, 0, 0, 0, 1])
        bad[6] ^= 1
        #expect(assembler.append(bad + [1, 3]) == [.badCRC])
        #expect(assembler.silence() == nil)
        #expect(assembler.append(CRC16.appending(to: [1, 3, 0, 0, 0, 1])).count == 1)
    }

    @Test func unknownFunctionEndsAtSilenceAndTruncatedFramesAreMalformed() {
        var assembler = RTUFrameAssembler()
        let report = CRC16.appending(to: [1, 0x11])
        #expect(assembler.append(report).isEmpty)
        #expect(assembler.silence() == .frame(report))
        #expect(assembler.append([1, 3, 0]).isEmpty)
        #expect(assembler.silence() == .malformed)
    }
}
