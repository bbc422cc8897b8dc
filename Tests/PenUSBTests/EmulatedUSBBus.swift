#if os(Linux)
  import Testing

  /// Every test that brings up an emulated USB device lives under this suite: umockdev's testbed is
  /// process-wide (one emulated bus at a time, usb-emulation.md), so they must not run in parallel
  /// with each other.
  @Suite(.serialized)
  enum EmulatedUSBBus {}
#endif
