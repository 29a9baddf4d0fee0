/// The one version of accessgw: `accessgw --version`, `status`, the gateway status payload, `accessgw_build_info`,
/// and the Debian package all read it from here. Bump it together with CHANGELOG.md.
public enum BuildInfo {
    public static let version = "0.5.0"

    /// The CPU architecture the binary was built for, as Debian names it.
    public static var architecture: String {
        #if arch(x86_64)
        return "amd64"
        #elseif arch(arm64)
        return "arm64"
        #elseif arch(arm)
        return "armhf"
        #else
        return "unknown"
        #endif
    }
}
