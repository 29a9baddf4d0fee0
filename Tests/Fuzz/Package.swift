// swift-tools-version: 6.1
// The libFuzzer targets: one executable per directory under Targets/, built by scripts/fuzz with
// `-sanitize=fuzzer,address` into .build-fuzz. Adding a target is adding Targets/NAME/main.swift (and seeds in
// Corpus/NAME/); nothing here needs editing. Kept out of the main package so `swift build` never builds them.
import Foundation
import PackageDescription

let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let root = here.deletingLastPathComponent().deletingLastPathComponent()
// A path dependency's identity is its directory's name (the clone's folder, whatever CI calls it).
let rootIdentity = root.lastPathComponent.lowercased()
let targetNames = ((try? FileManager.default.contentsOfDirectory(atPath: here.appendingPathComponent("Targets").path)) ?? [])
    .filter { !$0.hasPrefix(".") }.sorted()

let package = Package(
    name: "accessgw-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: root.path)],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"]),
    ] + targetNames.map { name in
        .executableTarget(name: name, dependencies: [
            "FuzzSupport", .product(name: "AccessGatewayModules", package: rootIdentity),
        ], path: "Targets/\(name)")
    },
    // Swift 5 mode: a target's top-level state (decoders, the fuzzing device) is used from the driver's callback.
    swiftLanguageModes: [.v5]
)
