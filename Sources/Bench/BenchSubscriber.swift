// The bench talks to libmosquitto directly rather than through MQTTPublisher: its subscriber and its raw-publish
// baseline are the reference the gateway is measured against, so they must not share the gateway's wrapper
// (as ring-benchmark's C reference ring does not share EventRing's code).
import CMosquitto
import Foundation
import Synchronization

/// A QoS 1 subscriber on `{prefix}/#` (libmosquitto, MQTT 3.1.1, its own network thread) that notes for every
/// CloudEvent on an event topic its arrival time and the event's `time`, and counts the raw baseline's messages.
final class BenchSubscriber: @unchecked Sendable {
    // @unchecked: `handle` is driven by libmosquitto's own thread after `start`; our state is in Mutexes.
    struct Arrival {
        var deviceMillis: Int64
        var arrivalMillis: Int64
    }

    private let handle: OpaquePointer
    let prefix: String
    /// What it subscribes to: `{prefix}/#` unless told otherwise.
    let filter: String
    private let arrivals = Mutex<[Arrival]>([])
    private let rawCount = Atomic<Int>(0)
    private let payloadBytes = Atomic<Int>(0)
    private let subscribed = Atomic<Bool>(false)
    /// With `notesPlaces`: the `gwseq` of every event received since the last `takePlaces` (receipts, SPEC 4.3).
    private let places = Mutex<[Int64]>([])
    var notesPlaces = false
    /// Places seen, so a re-sent event (receipts, SPEC 4.3) is counted once, as a subscriber drops duplicates by id.
    private let seenPlaces = Mutex<Set<Int64>>([])
    private let duplicateCount = Atomic<Int>(0)

    init(port: UInt16, prefix: String, filter: String? = nil) throws(BenchError) {
        _ = libraryReady
        self.prefix = prefix
        self.filter = filter ?? "\(prefix)/#"
        guard let handle = mosquitto_new("bench-sub-\(prefix.replacingOccurrences(of: "/", with: "-"))-\(getpid())", true, nil) else { throw BenchError("mosquitto_new failed") }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle) { mosq, obj, rc in
            guard rc == 0, let obj else { return }
            let me = Unmanaged<BenchSubscriber>.fromOpaque(obj).takeUnretainedValue()
            mosquitto_subscribe(mosq, nil, me.filter, 1)
        }
        mosquitto_subscribe_callback_set(handle) { _, obj, _, _, _ in
            guard let obj else { return }
            Unmanaged<BenchSubscriber>.fromOpaque(obj).takeUnretainedValue().subscribed.store(true, ordering: .releasing)
        }
        mosquitto_message_callback_set(handle) { _, obj, message in
            guard let obj, let message else { return }
            Unmanaged<BenchSubscriber>.fromOpaque(obj).takeUnretainedValue().received(message.pointee)
        }
        guard mosquitto_connect(handle, "127.0.0.1", Int32(port), 30) == 0, mosquitto_loop_start(handle) == 0 else {
            throw BenchError("the bench subscriber cannot connect to 127.0.0.1:\(port)")
        }
        let deadline = Date().addingTimeInterval(10)
        while !subscribed.load(ordering: .acquiring) {
            guard Date() < deadline else { throw BenchError("no SUBACK from the broker within 10 s") }
            usleep(5000)
        }
    }

    deinit {
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
        mosquitto_destroy(handle)
    }

    private func received(_ message: mosquitto_message) {
        let now = wallMillis()
        guard let topic = message.topic, let payload = message.payload else { return }
        let bytes = UnsafeRawBufferPointer(start: payload, count: Int(message.payloadlen))
        if strstr(topic, "/raw/") != nil {
            rawCount.add(1, ordering: .relaxed)
            return
        }
        if strstr(topic, "/event/") != nil, let place = Self.number(after: "\"gwseq\":", in: bytes) {
            guard seenPlaces.withLock({ $0.insert(place).inserted }) else {
                duplicateCount.add(1, ordering: .relaxed)
                return
            }
            if notesPlaces { places.withLock { $0.append(place) } }
        }
        // Device events only: gateway-made events (device.online, gateway.started…) carry the gateway's time.
        guard strstr(topic, "/event/") != nil, strstr(topic, "/event/device.") == nil,
              strstr(topic, "/event/gateway.") == nil, let time = Self.eventTime(bytes) else { return }
        payloadBytes.add(bytes.count, ordering: .relaxed)
        arrivals.withLock { $0.append(Arrival(deviceMillis: time, arrivalMillis: now)) }
    }

    /// The CloudEvent's `time` (`"time":"2026-11-27T08:01:02.345Z"`) in Unix milliseconds.
    static func eventTime(_ payload: UnsafeRawBufferPointer) -> Int64? {
        let key = Array("\"time\":\"".utf8)
        guard payload.count > key.count + 24 else { return nil }
        var start = -1
        outer: for i in 0..<(payload.count - key.count - 24) {
            for j in 0..<key.count where payload[i + j] != key[j] { continue outer }
            start = i + key.count
            break
        }
        guard start >= 0 else { return nil }
        func number(_ offset: Int, _ count: Int) -> Int64 {
            var n: Int64 = 0
            for k in 0..<count { n = n * 10 + Int64(payload[start + offset + k]) - 48 }
            return n
        }
        // Days from civil (Howard Hinnant's algorithm), UTC.
        var y = number(0, 4)
        let m = number(5, 2), d = number(8, 2)
        y -= m <= 2 ? 1 : 0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86400 + number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)
        let millis = payload[start + 19] == UInt8(ascii: ".") ? number(20, 3) : 0
        return seconds * 1000 + millis
    }

    /// The decimal number right after the first `key` in `payload`.
    static func number(after key: String, in payload: UnsafeRawBufferPointer) -> Int64? {
        let key = Array(key.utf8)
        guard payload.count > key.count else { return nil }
        outer: for i in 0..<(payload.count - key.count) {
            for j in 0..<key.count where payload[i + j] != key[j] { continue outer }
            var n: Int64 = 0, index = i + key.count, digits = 0
            while index < payload.count, (48...57).contains(payload[index]), digits < 18 {
                n = n * 10 + Int64(payload[index] - 48)
                index += 1
                digits += 1
            }
            return digits > 0 ? n : nil
        }
        return nil
    }

    /// The places noted since the last call.
    func takePlaces() -> [Int64] { places.withLock { all in defer { all.removeAll(keepingCapacity: true) }; return all } }

    var deviceEventCount: Int { arrivals.withLock { $0.count } }
    /// Events received again (re-sent), not counted as arrivals.
    var duplicates: Int { duplicateCount.load(ordering: .relaxed) }
    var rawReceived: Int { rawCount.load(ordering: .relaxed) }
    var allArrivals: [Arrival] { arrivals.withLock { $0 } }
    var meanPayloadBytes: Int {
        let count = deviceEventCount
        return count == 0 ? 0 : payloadBytes.load(ordering: .relaxed) / count
    }
}

/// `mosquitto_lib_init` once per process.
let libraryReady: Bool = {
    signal(SIGPIPE, SIG_IGN)
    return mosquitto_lib_init() == 0
}()

/// The baseline: a plain libmosquitto QoS 1 publisher loop (MQTT 5, `MOSQ_OPT_SEND_MAXIMUM` = the gateway's
/// max_inflight, at most that many unacknowledged) sending `count` messages of `payloadBytes` to `{prefix}/raw/…`
/// on the same broker, timed from the first publish to the last PUBACK.
final class RawPublisher: @unchecked Sendable {
    // @unchecked: `handle` is driven by libmosquitto's own thread after `loop_start`; counters are atomic.
    private let handle: OpaquePointer
    private let permits: DispatchSemaphore
    private let acked = Atomic<Int>(0)
    private let connected = Atomic<Bool>(false)

    init(port: UInt16, maxInflight: Int) throws(BenchError) {
        _ = libraryReady
        guard let handle = mosquitto_new("bench-raw-\(getpid())", true, nil) else { throw BenchError("mosquitto_new failed") }
        self.handle = handle
        permits = DispatchSemaphore(value: maxInflight)
        mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)
        mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(maxInflight))
        mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1)
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_v5_callback_set(handle) { _, obj, rc, _, _ in
            guard rc == 0, let obj else { return }
            Unmanaged<RawPublisher>.fromOpaque(obj).takeUnretainedValue().connected.store(true, ordering: .releasing)
        }
        mosquitto_publish_v5_callback_set(handle) { _, obj, _, _, _ in
            guard let obj else { return }
            let me = Unmanaged<RawPublisher>.fromOpaque(obj).takeUnretainedValue()
            me.acked.add(1, ordering: .releasing)
            me.permits.signal()
        }
        guard mosquitto_connect(handle, "127.0.0.1", Int32(port), 30) == 0, mosquitto_loop_start(handle) == 0 else {
            throw BenchError("the raw publisher cannot connect to 127.0.0.1:\(port)")
        }
        let deadline = Date().addingTimeInterval(10)
        while !connected.load(ordering: .acquiring) {
            guard Date() < deadline else { throw BenchError("no CONNACK for the raw publisher within 10 s") }
            usleep(5000)
        }
    }

    deinit {
        mosquitto_disconnect(handle)
        mosquitto_loop_stop(handle, false)
        mosquitto_destroy(handle)
    }

    /// Publishes `count` messages and returns messages per second (first publish to last PUBACK).
    func run(count: Int, payloadBytes: Int, topic: String) -> Double {
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: payloadBytes)
        let before = acked.load(ordering: .acquiring)
        let started = monotonicSeconds()
        payload.withUnsafeBytes { bytes in
            for _ in 0..<count {
                permits.wait()
                mosquitto_publish(handle, nil, topic, Int32(bytes.count), bytes.baseAddress, 1, false)
            }
        }
        while acked.load(ordering: .acquiring) - before < count { usleep(200) }
        return Double(count) / (monotonicSeconds() - started)
    }
}
