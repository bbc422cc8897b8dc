#if os(Linux)
  internal import CUMockdevShim
  import Glibc
  import PenSafety
  import PenSimulator
  import PenWire
  import Synchronization

  /// The pen's side of usbdevfs: what the Linux kernel would answer libusb for this device, with
  /// the simulated firmware behind the endpoints. It runs on umockdev's worker thread, one ioctl
  /// at a time; `unplug()` and the properties may be called from any thread. Its state is behind
  /// its own lock, taken before the pen's lock and never inside it.
  final class USBDevfsHandler: Sendable {
    let pen: SimulatedPen
    let descriptors: PenUSBDescriptors
    /// The device's address on its bus (CONNECTINFO).
    let address: UInt8
    let state: Mutex<State>

    /// A blocking REAPURB (libusb never issues one: it polls with REAPURBNDELAY) runs virtual time
    /// for at most this long while it waits, then fails with EAGAIN rather than block umockdev.
    static let blockingReapLimit = Microseconds.milliseconds(60_000)
    /// Frames an IN endpoint keeps for a host that does not read them; older ones are dropped
    /// (usb.md section 4: the pen's transmit queue is finite).
    static let transmitQueueLimit = 1024

    /// A submitted URB. @unchecked: the C handles are used by one thread at a time, under the
    /// state lock or after the URB has left the state.
    struct URB: @unchecked Sendable {
      let handle: OpaquePointer
      let client: OpaquePointer
      let type: UInt8
      let endpoint: UInt8
      let length: Int
      let address: UInt
    }

    struct InQueue {
      var frames: [[UInt8]] = []
      var offset = 0
      var zeroLengthPacketDue = false
      var dropped = 0
    }

    struct State {
      var connected = true
      var advancesTimeWhileWaiting = true
      /// IN URBs waiting for data, in submission order.
      var pending: [URB] = []
      /// Completed URBs, in completion order, until their client reaps them.
      var reapable: [URB] = []
      var bulkIn = InQueue()
      var interruptIn = InQueue()
      var waitTicks: UInt64 = 0
      /// Endpoints halted (STALL): their URBs end with -EPIPE until the host clears the halt.
      var halted: Set<UInt8> = []
    }

    init(pen: SimulatedPen, descriptors: PenUSBDescriptors, address: UInt8) {
      self.pen = pen
      self.descriptors = descriptors
      self.address = address
      state = Mutex(State())
    }

    deinit {
      // Nothing can reap them any more: the testbed and its clients are gone.
      state.withLock { s in
        for urb in s.pending + s.reapable { pcum_urb_release(urb.handle) }
        s.pending = []
        s.reapable = []
      }
    }

    // MARK: Requests

    func handle(_ client: OpaquePointer, _ request: pcum_request) {
      switch request {
      case .reapURBNDelay: reap(client, blocking: false)
      case .reapURB: reap(client, blocking: true)
      case .submitURB: submit(client)
      default:
        // Every other request fails on a disconnected device, as usbfs's do.
        if !state.withLock({ $0.connected }) {
          pcum_client_complete(client, -1, ENODEV)
          return
        }
        switch request {
        case .getCapabilities:
          // No scatter-gather and no bulk continuation: one URB per transfer, ended by a short
          // packet the way a real full-speed device ends it.
          var caps = UInt32(
            PCUM_CAP_ZERO_PACKET | PCUM_CAP_NO_PACKET_SIZE_LIM | PCUM_CAP_REAP_AFTER_DISCONNECT)
          let rc = pcum_client_arg_write(client, &caps, 4)
          complete(client, rc == 0 ? 0 : EFAULT)
        case .claimInterface, .releaseInterface:
          // No kernel driver is bound, so claiming always succeeds; interface 0 is the only one.
          guard let interface = readU32(client) else { return complete(client, EFAULT) }
          complete(client, interface == 0 ? 0 : ENOENT)
        case .disconnectClaim:
          // libusb's auto-detach: disconnect a driver (there is none) and claim.
          guard let interface = readU32(client) else { return complete(client, EFAULT) }
          complete(client, interface == 0 ? 0 : ENOENT)
        case .ioctl, .getDriver:
          // Driver queries and USBDEVFS_DISCONNECT: no kernel driver is bound.
          complete(client, ENODATA)
        case .setInterface:
          var pair = (UInt32(0), UInt32(0))
          guard pcum_client_arg_read(client, &pair, 8) == 0 else { return complete(client, EFAULT) }
          complete(client, pair == (0, 0) ? 0 : EINVAL)
        case .setConfiguration:
          guard let value = readU32(client) else { return complete(client, EFAULT) }
          complete(client, value == 1 || Int32(bitPattern: value) == -1 ? 0 : EINVAL)
        case .clearHalt, .resetEndpoint:
          guard let endpoint = readU32(client) else { return complete(client, EFAULT) }
          let known: [UInt32] = [0x00, 0x80, 0x01, 0x81, 0x82]
          if known.contains(endpoint & 0xFF) {
            state.withLock { _ = $0.halted.remove(UInt8(endpoint & 0xFF)) }
          }
          complete(client, known.contains(endpoint & 0xFF) ? 0 : ENOENT)
        case .reset:
          complete(client, 0)
        case .getSpeed:
          pcum_client_complete(client, 2, 0)  // USB_SPEED_FULL
        case .connectInfo:
          // struct usbdevfs_connectinfo { unsigned int devnum; unsigned char slow; }
          var info: (UInt32, UInt8, UInt8, UInt8, UInt8) = (UInt32(address), 0, 0, 0, 0)
          let rc = pcum_client_arg_write(client, &info, 8)
          complete(client, rc == 0 ? 0 : EFAULT)
        case .discardURB:
          discard(client)
        default:
          complete(client, ENOTTY)
        }
      }
    }

    private func complete(_ client: OpaquePointer, _ err: Int32) {
      pcum_client_complete(client, err == 0 ? 0 : -1, err)
    }

    private func readU32(_ client: OpaquePointer) -> UInt32? {
      var value: UInt32 = 0
      return pcum_client_arg_read(client, &value, 4) == 0 ? value : nil
    }

    // MARK: URBs

    private func submit(_ client: OpaquePointer) {
      if !state.withLock({ $0.connected }) { return complete(client, ENODEV) }
      var info = pcum_urb_info()
      guard let handle = pcum_urb_take(client, &info) else {
        let bad = info.buffer_length < 0 || info.buffer_length > 16 << 20
        return complete(client, bad ? EINVAL : EFAULT)
      }
      let urb = URB(
        handle: handle, client: client, type: info.type, endpoint: info.endpoint,
        length: Int(info.buffer_length), address: UInt(info.address))
      let typeOK: Bool
      switch urb.endpoint {
      case 0x00, 0x80: typeOK = urb.type == UInt8(PCUM_URB_TYPE_CONTROL)
      case PenUSBDescriptors.bulkOut, PenUSBDescriptors.bulkIn:
        typeOK = urb.type == UInt8(PCUM_URB_TYPE_BULK)
      case PenUSBDescriptors.interruptIn: typeOK = urb.type == UInt8(PCUM_URB_TYPE_INTERRUPT)
      default:
        pcum_urb_release(handle)
        return complete(client, ENOENT)
      }
      guard typeOK else {
        pcum_urb_release(handle)
        return complete(client, EINVAL)
      }
      if urb.type == UInt8(PCUM_URB_TYPE_CONTROL) {
        guard urb.length >= 8, let buffer = pcum_urb_buffer(handle) else {
          pcum_urb_release(handle)
          return complete(client, EINVAL)
        }
        let setup = Array(UnsafeBufferPointer(start: buffer, count: 8))
        let wLength = Int(setup[6]) | Int(setup[7]) << 8
        guard wLength <= urb.length - 8 else {
          pcum_urb_release(handle)
          return complete(client, EINVAL)
        }
        let outData = Array(UnsafeBufferPointer(start: buffer + 8, count: wLength))
        state.withLock { s in
          let (status, data) = control(setup, outData)
          let isIn = setup[0] & 0x80 != 0
          let actual = status != 0 ? 0 : (isIn ? min(data.count, wLength) : wLength)
          finish(
            urb, status: status, bytes: isIn ? Array(data.prefix(actual)) : [], offset: 8,
            actual: actual)
          s.reapable.append(urb)
          pump(&s)
        }
        return complete(client, 0)
      }
      if state.withLock({ $0.halted.contains(urb.endpoint) }) {
        // A halted endpoint answers every transfer with a STALL handshake.
        state.withLock { s in
          finish(urb, status: -EPIPE, bytes: [], offset: 0, actual: 0)
          s.reapable.append(urb)
        }
        return complete(client, 0)
      }
      if urb.endpoint == PenUSBDescriptors.bulkOut {
        let bytes =
          pcum_urb_buffer(handle).map { Array(UnsafeBufferPointer(start: $0, count: urb.length)) }
          ?? []
        state.withLock { s in
          pen.with { $0.receive(bytes) }
          finish(urb, status: 0, bytes: [], offset: 0, actual: urb.length)
          s.reapable.append(urb)
          pump(&s)
        }
        return complete(client, 0)
      }
      state.withLock { s in
        s.pending.append(urb)
        pump(&s)
      }
      complete(client, 0)
    }

    private func reap(_ client: OpaquePointer, blocking: Bool) {
      let urb: URB? = state.withLock { s in
        pump(&s)
        if let urb = takeReapable(&s, client) { return urb }
        // Virtual time: the pen's clock runs only while this client waits for IN data that is not
        // there yet. libusb polls REAPURBNDELAY in a loop while it waits (the device node is a
        // regular file, always ready), so each poll that finds nothing runs one control tick.
        var ran = Microseconds.zero
        while s.connected && s.advancesTimeWhileWaiting
          && s.pending.contains(where: { $0.client == client })
        {
          pen.with { $0.tick() }
          s.waitTicks += 1
          ran = Microseconds(ran.rawValue + SafetyTiming.controlTick.rawValue)
          pump(&s)
          if let urb = takeReapable(&s, client) { return urb }
          if !blocking || ran >= Self.blockingReapLimit { break }
        }
        return nil
      }
      if let urb {
        pcum_client_reap(client, urb.handle)
      } else {
        complete(client, state.withLock { $0.connected } ? EAGAIN : ENODEV)
      }
    }

    private func discard(_ client: OpaquePointer) {
      let address = UInt(pcum_client_arg_value(client))
      let found = state.withLock { s -> Bool in
        guard let i = s.pending.firstIndex(where: { $0.client == client && $0.address == address })
        else { return false }
        let urb = s.pending.remove(at: i)
        finish(urb, status: -ENOENT, bytes: [], offset: 0, actual: 0)
        s.reapable.append(urb)
        return true
      }
      // Not pending: already completed (libusb then reaps it) or never submitted.
      complete(client, found ? 0 : EINVAL)
    }

    private func takeReapable(_ s: inout State, _ client: OpaquePointer) -> URB? {
      guard let i = s.reapable.firstIndex(where: { $0.client == client }) else { return nil }
      return s.reapable.remove(at: i)
    }

    private func finish(_ urb: URB, status: Int32, bytes: [UInt8], offset: Int, actual: Int) {
      bytes.withUnsafeBufferPointer { b in
        pcum_urb_finish(urb.handle, status, Int32(actual), b.baseAddress, offset, b.count)
      }
    }

    /// Moves the pen's new frames to the IN endpoints and completes what IN URBs they can; notices
    /// a pen that was unplugged, and forgets the URBs of clients that closed the device.
    private func pump(_ s: inout State) {
      func dropVanished(_ urbs: inout [URB]) {
        urbs.removeAll { urb in
          if pcum_urb_client_connected(urb.handle) != 0 { return false }
          pcum_urb_release(urb.handle)
          return true
        }
      }
      dropVanished(&s.pending)
      dropVanished(&s.reapable)
      guard s.connected else { return }
      let (bulk, interrupt, plugged) = pen.with { fw in
        (fw.takeBulkIn(), fw.takeInterruptIn(), fw.plugged)
      }
      if !plugged {
        disconnect(&s)
        return
      }
      Self.enqueue(bulk, on: &s.bulkIn)
      Self.enqueue(interrupt, on: &s.interruptIn)
      var i = 0
      while i < s.pending.count {
        let urb = s.pending[i]
        if s.halted.contains(urb.endpoint) {
          finish(urb, status: -EPIPE, bytes: [], offset: 0, actual: 0)
          s.pending.remove(at: i)
          s.reapable.append(urb)
          continue
        }
        let taken =
          urb.endpoint == PenUSBDescriptors.bulkIn
          ? Self.take(from: &s.bulkIn, capacity: urb.length)
          : Self.take(from: &s.interruptIn, capacity: urb.length)
        if let (bytes, status) = taken {
          finish(urb, status: status, bytes: bytes, offset: 0, actual: bytes.count)
          s.pending.remove(at: i)
          s.reapable.append(urb)
        } else {
          i += 1
        }
      }
    }

    /// The cable is gone: URBs in flight end with ESHUTDOWN as the host controller ends them,
    /// later submissions fail with ENODEV, and reaping fails with ENODEV once nothing is left.
    func disconnect(_ s: inout State) {
      guard s.connected else { return }
      s.connected = false
      for urb in s.pending {
        finish(urb, status: -ESHUTDOWN, bytes: [], offset: 0, actual: 0)
        s.reapable.append(urb)
      }
      s.pending = []
      s.bulkIn = InQueue()
      s.interruptIn = InQueue()
    }

    static func enqueue(_ frames: [[UInt8]], on queue: inout InQueue) {
      queue.frames += frames
      let excess = queue.frames.count - transmitQueueLimit
      if excess > 0 {
        queue.frames.removeFirst(excess)
        queue.offset = 0
        queue.dropped += excess
      }
    }

    /// One IN URB's worth of an endpoint, with USB packet semantics: a frame is sent as packets
    /// of 64 bytes and ends with a short packet (or a zero-length one when its length is a
    /// multiple of 64). A URB completes on a short packet or when its buffer is full; a packet
    /// that does not fit in what is left of the buffer is babble (EOVERFLOW). At most one frame
    /// per URB. Nil when the endpoint has nothing to send.
    static func take(from queue: inout InQueue, capacity: Int) -> ([UInt8], Int32)? {
      let packet = PenUSBDescriptors.maxPacketSize
      if queue.zeroLengthPacketDue {
        queue.zeroLengthPacketDue = false
        return ([], 0)
      }
      guard let frame = queue.frames.first else { return nil }
      let remaining = frame.count - queue.offset
      if remaining <= capacity {
        let bytes = Array(frame[queue.offset...])
        queue.frames.removeFirst()
        queue.offset = 0
        // The buffer filled exactly at a packet boundary: the URB is complete before the pen's
        // terminating zero-length packet, which goes to the next URB.
        if remaining == capacity && remaining % packet == 0 && remaining > 0 {
          queue.zeroLengthPacketDue = true
        }
        return (bytes, 0)
      }
      let wholePackets = capacity / packet * packet
      let bytes = Array(frame[queue.offset..<(queue.offset + capacity)])
      if wholePackets == capacity {
        queue.offset += capacity
        return (bytes, 0)
      }
      // The packet after the whole ones overflows the buffer: its rest is lost.
      queue.offset = min(queue.offset + wholePackets + packet, frame.count)
      if queue.offset == frame.count {
        queue.frames.removeFirst()
        queue.offset = 0
      }
      return (bytes, -EOVERFLOW)
    }

    // MARK: Endpoint 0

    /// A control request: (0 or a negative errno, data for the host). STALL is -EPIPE.
    private func control(_ setup: [UInt8], _ data: [UInt8]) -> (Int32, [UInt8]) {
      let requestType = setup[0]
      let request = setup[1]
      let value = UInt16(setup[2]) | UInt16(setup[3]) << 8
      let index = UInt16(setup[4]) | UInt16(setup[5]) << 8
      let length = Int(setup[6]) | Int(setup[7]) << 8
      let stall: (Int32, [UInt8]) = (-EPIPE, [])
      switch (requestType, request) {
      // Vendor requests to interface 0 (usb.md section 5); anything malformed stalls.
      case (0x41, 0x01):
        guard value == 0x4553, index == 0, length == 0 else { return stall }
        pen.with { $0.controlEmergencyStop() }
        return (0, [])
      case (0xC1, 0x02):
        guard value == 0, index == 0, length == 8 else { return stall }
        let hash = MessageCatalogue.hash
        return (
          0,
          [
            FrameLayout.protocolVersion, 1, 0, 0, UInt8(hash & 0xFF), UInt8(hash >> 8 & 0xFF),
            UInt8(hash >> 16 & 0xFF), UInt8(hash >> 24),
          ]
        )
      case (0xC1, 0x03):
        guard value == 0, index == 0, length == 2 else { return stall }
        let (penState, fault) = pen.with { ($0.core.state.rawValue, $0.core.latchedFault.rawValue) }
        return (0, [penState, fault])
      // Standard requests.
      case (0x80, 0x06):  // GET_DESCRIPTOR
        let kind = UInt8(value >> 8)
        let number = UInt8(value & 0xFF)
        switch (kind, number) {
        case (1, 0): return (0, descriptors.device)
        case (2, 0): return (0, descriptors.configuration)
        case (3, _):
          guard let string = descriptors.string(index: number, language: index) else {
            return stall
          }
          return (0, string)
        default: return stall  // no device qualifier: a full-speed-only device
        }
      case (0x80, 0x00), (0x81, 0x00), (0x82, 0x00):  // GET_STATUS
        return (0, [0, 0])
      case (0x80, 0x08):  // GET_CONFIGURATION
        return (0, [1])
      case (0x81, 0x0A):  // GET_INTERFACE
        return index == 0 ? (0, [0]) : stall
      case (0x00, 0x09):  // SET_CONFIGURATION
        return value <= 1 ? (0, []) : stall
      case (0x01, 0x0B):  // SET_INTERFACE
        return value == 0 && index == 0 ? (0, []) : stall
      case (0x02, 0x01):  // CLEAR_FEATURE(ENDPOINT_HALT)
        return value == 0 ? (0, []) : stall
      default:
        _ = data
        return stall
      }
    }
  }
#endif
