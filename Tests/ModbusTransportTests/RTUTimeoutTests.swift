import AccessModel
@testable import ModbusTransport
import Simulators
import Testing

/// SPEC 2: on RTU `timeout` is how long a device may take to start answering; the gateway adds the frames' own time
/// on the line at its baud rate, for every request size (issue 24 item 1).
@Suite("RTU timeouts that know the baud rate")
struct RTUTimeoutTests {
    @Test func replyLengthFollowsTheRequest() {
        #expect(RTUFrameLength.reply(to: [0x03, 0x00, 0x64, 0x00, 0x6A]) == 217)  // the full event block, 106 registers
        #expect(RTUFrameLength.reply(to: [0x03, 0x00, 0x64, 0x00, 0x0A]) == 25)  // its header
        #expect(RTUFrameLength.reply(to: [0x17, 0x00, 0x64, 0x00, 0x6A, 0x00, 0x6A, 0x00, 0x02, 0x04, 0, 0, 0, 7]) == 217)
        #expect(RTUFrameLength.reply(to: [0x06, 0x00, 0x1E, 0x00, 0x01]) == 8)
        #expect(RTUFrameLength.reply(to: [0x10, 0x00, 0x6A, 0x00, 0x02, 0x04, 0, 0, 0, 7]) == 8)
        #expect(RTUFrameLength.reply(to: [0x01, 0x00, 0x00, 0x00, 0x09]) == 7)
        #expect(RTUFrameLength.reply(to: [0x2B, 0x0E]) == 256)
        #expect(RTUFrameLength.request([0x03, 0x00, 0x64, 0x00, 0x6A]) == 8)
    }

    @Test func windowIsTheTimeoutPlusTheFramesOnTheLine() {
        let line = RTULineTiming(baud: 9600, dataBits: 8, parity: .none, stopBits: 1)
        // SPEC 2's example: 200 ms to start answering; a full window read adds 8 bytes out, the 3.5-character gap
        // and 217 bytes back: 8.33 + 3.65 + 226.04 ms.
        let window = line.responseWindowNanoseconds(timeoutMillis: 200, requestBytes: 8, replyBytes: 217)
        #expect(window / 100_000 == 4380)
        #expect(line.responseWindowNanoseconds(timeoutMillis: 200, requestBytes: 8, replyBytes: 25) / 100_000 == 2380)
        // Parity adds a bit per character; above 19200 baud the gap is a fixed 1.75 ms.
        let even = RTULineTiming(baud: 9600, dataBits: 8, parity: .even, stopBits: 1)
        #expect(even.responseWindowNanoseconds(timeoutMillis: 200, requestBytes: 8, replyBytes: 217) / 100_000 == 4618)
        let fast = RTULineTiming(baud: 115_200, dataBits: 8, parity: .none, stopBits: 1)
        #expect(fast.responseWindowNanoseconds(timeoutMillis: 50, requestBytes: 8, replyBytes: 217) / 100_000 == 712)
    }

    /// The regression of issue 24: at 9600 baud with `timeout: 200ms` a full window read's reply takes 226 ms on the
    /// wire alone, so every one timed out and its late reply was read as the next unit's. Over a pty with the
    /// baud-paced simulator (5 ms device latency) it answers now, again and again, and the line stays in step.
    @Test func fullWindowReadAtSpecExampleSettingsAnswers() async throws {
        let door = SimulatedDevice(kind: .faceDoor, unit: 1, responseLatencyMilliseconds: 5)
        let lift = SimulatedDevice(kind: .elevator, unit: 2, responseLatencyMilliseconds: 5)
        for i in 0..<3 { door.record(code: 16, point: Int16(i)) }
        let fixture = try await RTUFixture([door, lift], timeoutMillis: 200, paced: true)
        let outcome = try await onBus { () -> (heads: [UInt16], ackRead: UInt16, lift: Identity, late: Int) in
            let connection = fixture.connection
            var heads: [UInt16] = []
            for _ in 0..<3 {
                let block = try connection.readRegisters(unit: 1, address: 100, count: 106)
                heads.append(block[5])  // window_count
            }
            // Function 23 with the whole window: the ack of seq 1 and the read on, in one transaction.
            let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: 106)
            defer { buffer.deallocate() }
            try connection.writeAndReadRegisters(unit: 1, writeAddress: 106, values: [0, 1], readAddress: 100, count: 106,
                                                 into: buffer)
            return (heads, buffer[5], try connection.identity(unit: 2), connection.lateReplies)
        }
        #expect(outcome.heads == [3, 3, 3])
        #expect(outcome.ackRead == 2, "after the ack of seq 1 the window holds seq 2 and 3")
        #expect(outcome.lift == Identity(of: lift))
        #expect(outcome.late == 0)
        #expect(fixture.server.statistics.dropped == 0)
    }

    /// A reply later than its window is taken off the line while the line gets its silence, discarded and counted,
    /// and the next unit gets its own answer. The paced simulator cannot answer early, so the reply arrives 30 ms
    /// after the deadline and well within the silence the gateway listens for (a full reply's time, 226 ms).
    @Test func lateReplyIsDiscardedAndCounted() async throws {
        let slow = SimulatedDevice(kind: .faceDoor, unit: 1, faults: DeviceFaults(delayMilliseconds: 130))
        let lift = SimulatedDevice(kind: .elevator, unit: 2)
        let fixture = try await RTUFixture([slow, lift], timeoutMillis: 100, paced: true)
        let failed = try await timedFailure { _ = try fixture.connection.readRegisters(unit: 1, address: 100, count: 106) }
        #expect(try #require(failed.error).code == .timeout)
        let after = try await onBus { () -> (late: Int, discarded: Int, lift: Identity) in
            (fixture.connection.lateReplies, fixture.connection.discardedBytes, try fixture.connection.identity(unit: 2))
        }
        #expect(after.late == 1)
        #expect(after.discarded == 217)
        #expect(after.lift == Identity(of: lift))
    }
}
