// DeviceProfiles
