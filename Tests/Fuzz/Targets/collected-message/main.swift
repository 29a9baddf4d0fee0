import AccessModel
import Collector
import FuzzSupport

/// A message as `accessgw collect` reads it from the central broker (SPEC 4.4): `CollectedMessage.read` (topic levels,
/// UTF-8, `JSONValue(parsing:)`, the CloudEvent's id, source, type, time, gwepoch/gwseq, erasures and expiries), then
/// the batch planning that deduplicates by id, and the receipt coverage of the places read. The first byte picks the
/// topic (event, state, status, or one from the input up to its first NUL).
let topics = ["accessgw/site-a/door-1/event/access.granted", "accessgw/site-a/door-1/state", "accessgw/site-a/gateway/gw-01/status"]

fuzz { input in
    let (kind, rest) = input.split(choices: 4)
    var topic = kind < 3 ? topics[kind] : ""
    var payload = rest
    if kind == 3 {
        let cut = rest.firstIndex(of: 0) ?? rest.endIndex
        topic = String(decoding: UnsafeBufferPointer(rebasing: rest[rest.startIndex..<cut]), as: UTF8.self)
        payload = cut < rest.endIndex ? UnsafeBufferPointer(rebasing: rest[(cut + 1)...]) : UnsafeBufferPointer(rebasing: rest[cut...])
    }
    let message = CollectedMessage.read(topic: topic, payload: Array(payload), prefix: "accessgw")
    let plan = BatchPlan([message, message])
    let places = plan.events.compactMap(\.gwseq).map { $0...$0 } + plan.events.compactMap(\.expired)
    _ = ReceiptCoverage.compute(through: 0, filled: places)
}
