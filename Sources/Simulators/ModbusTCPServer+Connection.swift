#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection's request loop: MBAP header, PDU, faults, reply.
///
/// The bench runs these threads in its own process, so each request costs as little as the socket allows: one
/// `recv` takes whatever has arrived (usually one whole request) into a buffer kept for the connection, and the
/// reply is built in another kept buffer and sent with one `send`; nothing is allocated per request.
extension ModbusTCPServer {
    /// The largest frame: a 7-byte MBAP header and up to 253 bytes of PDU after the unit id (length 254).
    static let maximumFrame = 7 + 253

    func serve(_ fd: Int32) {
        var input = ReceiveBuffer(capacity: 2 * Self.maximumFrame)
        var frame: [UInt8] = []
        frame.reserveCapacity(Self.maximumFrame + 16)
        while true {
            guard input.fill(fd, atLeast: 7) else {
                if input.count > 0 { counters.update { $0.malformedFrames += 1 } }
                return
            }
            let protocolID = Int(input[2]) << 8 | Int(input[3])
            let length = Int(input[4]) << 8 | Int(input[5])
            let unit = input[6]
            guard protocolID == 0, (2...254).contains(length) else {
                counters.update { $0.malformedFrames += 1 }
                logger.debug("malformed MBAP header", metadata: ["protocol": "\(protocolID)", "length": "\(length)"])
                return
            }
            guard input.fill(fd, atLeast: 6 + length) else {
                counters.update { $0.malformedFrames += 1 }
                return
            }
            frame.removeAll(keepingCapacity: true)
            // Transaction and protocol id echoed; length and unit filled in below, once the reply is known.
            frame.append(contentsOf: [input[0], input[1], input[2], input[3], 0, 0, unit])
            var replyUnit = unit
            var trailing = 0
            var padding = 0
            let function = input[7]
            if let device = device(for: unit) {
                let address = length >= 4 ? UInt16(input[8]) << 8 | UInt16(input[9]) : nil
                let (decision, faults) = device.decideFaultAndFaults(function: function, address: address)
                replyUnit = faults.replyUnit ?? unit
                trailing = faults.trailingBytes
                padding = faults.paddedReplyBytes
                switch decision {
                case .dropConnection:
                    counters.update { $0.dropped += 1 }
                    return
                case .noReply:
                    counters.update { $0.dropped += 1 }
                    input.consume(6 + length)
                    continue
                case let .exception(code, delay):
                    PreciseClock.sleep(milliseconds: delay)
                    ModbusPDU.appendException(function, code: code, to: &frame)
                case let .answer(delay, _):
                    PreciseClock.sleep(milliseconds: delay)
                    input.withBytes(from: 7, count: length - 1) { ModbusPDU.appendReply(to: $0, device: device, to: &frame) }
                }
            } else {
                ModbusPDU.appendException(function, code: ModbusException.gatewayTargetFailed("").code, to: &frame)  // no such unit
            }
            input.consume(6 + length)
            counters.countRequest()
            let replyLength = frame.count - 6 + padding
            frame[4] = UInt8(replyLength >> 8)
            frame[5] = UInt8(replyLength & 0xFF)
            frame[6] = replyUnit
            if padding + trailing > 0 { frame += repeatElement(0xA5, count: padding + trailing) }
            guard Socket.writeAll(fd, frame) else { return }
        }
    }
}

/// Bytes received on a connection and not yet taken as a request: each `recv` takes what has arrived, up to the
/// buffer's free space, so a request that arrives whole costs one call.
struct ReceiveBuffer: ~Copyable {
    private let storage: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    /// Bytes held, from `storage[0]`.
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    subscript(index: Int) -> UInt8 { storage[index] }

    /// Receives until at least `needed` bytes (at most the capacity) are held; false when the peer closed (or the
    /// socket was shut down) first.
    mutating func fill(_ fd: Int32, atLeast needed: Int) -> Bool {
        precondition(needed <= capacity, "a frame larger than the receive buffer")
        while count < needed {
            let n = recv(fd, storage + count, capacity - count, 0)
            if n > 0 { count += n; continue }
            if n < 0, errno == EINTR { continue }
            return false
        }
        return true
    }

    /// Calls `body` with `count` held bytes from `offset`.
    func withBytes<R>(from offset: Int, count: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        body(UnsafeBufferPointer(start: storage + offset, count: count))
    }

    /// Drops the first `used` bytes, keeping what followed them (a pipelined request).
    mutating func consume(_ used: Int) {
        if used < count { memmove(storage, storage + used, count - used) }
        count -= min(used, count)
    }
}
