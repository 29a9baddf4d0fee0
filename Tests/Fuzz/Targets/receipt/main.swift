import AccessModel
import FuzzSupport
import Journal
import RequestAuthority

/// A receipt message as the receipt intake (SPEC 4.3) reads it: `RequestAuthority.decideReceipt` (`Receipt.parse`,
/// the Ed25519 check of the `signature` user property, the `receipt` permission, epoch and staleness), then the
/// coverage the gateway would apply (`ReceiptCoverage`: normalising, `covers`, `holes`, `unconfirmed`) over places
/// around what the receipt names. The payload ends at the first NUL, and what follows is the signature text.
let key = try! Ed25519PrivateKey()
let authority = RequestAuthority(issuers: [
    Issuer(id: "pm-central", publicKey: key.publicKey, allow: [AllowRule(devices: [NamePattern("*")!], commands: ["receipt"])]),
])
let topic = "accessgw/site/gateway/gw-1/receipt"

fuzz { fuzzInput in
    let input = fuzzInput.bytes
    let cut = input.firstIndex(of: 0) ?? input.endIndex
    let payload = UnsafeBufferPointer(rebasing: input[input.startIndex..<cut])
    let signature = cut < input.endIndex ? String(decoding: UnsafeBufferPointer(rebasing: input[(cut + 1)...]), as: UTF8.self) : nil
    _ = authority.decideReceipt(topic: topic, payload: payload, signature: signature, gateway: "gw-1", epoch: "9f3a1c0d",
                                appliedThrough: 10)
    guard let receipt = Receipt.parse(payload) else { return }
    let coverage = ReceiptCoverage(through: receipt.through, ranges: receipt.ranges)
    let top = min(Receipt.maxPlace, (receipt.ranges.last?.upperBound ?? receipt.through) &+ 5)
    let bottom = max(1, receipt.through - 5)
    if bottom <= top {
        let holes = coverage.holes(in: bottom...top)
        precondition(holes.allSatisfy { !coverage.covers($0.lowerBound) && !coverage.covers($0.upperBound) })
        let sample = (0..<64).map { bottom + ($0 * max(1, (top - bottom) / 64)) }.filter { $0 <= top }
        _ = coverage.unconfirmed(sample)
    }
    for range in receipt.ranges { precondition(coverage.covers(range.lowerBound) && coverage.covers(range.upperBound)) }
    precondition(coverage.covers(receipt.through))
}
