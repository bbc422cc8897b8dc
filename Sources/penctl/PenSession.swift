import Foundation
import PenDriver
import PenSimulator
import PenUSB
import PenWire

/// A pen connected for the length of one command: a real one on USB (by serial), or a simulated
/// one whose non-volatile memory — calibration record, cartridge use counts, estop count, event
/// log — lives in a state file per serial in the data directory, so that it persists between
/// commands the way a real pen's does (`--sim-reset` starts it fresh from the factory).
final class PenSession {
  let pen: Pen
  /// The simulated pen, for its fixtures and the scripted passes; nil for a real pen.
  let simulated: SimulatedPen?
  let stateFile: URL?
  let context: USBContext?

  init(pen: Pen, simulated: SimulatedPen?, stateFile: URL?, context: USBContext?) {
    self.pen = pen
    self.simulated = simulated
    self.stateFile = stateFile
    self.context = context
  }

  /// Connects the pen the options name.
  static func open(
    simulator: SimulatorOptions, serial: String?, dataDirectory: URL
  ) throws(CLIError) -> PenSession {
    if simulator.sim {
      let model = try simulatedModel(simulator)
      let serial = SimulatedPen.serial(model: model, seed: simulator.simSeed)
      let file = stateFile(serial: serial, in: dataDirectory)
      if simulator.simReset { try? FileManager.default.removeItem(at: file) }
      let nvm = try loadState(file, model: model, serial: serial)
      // A pen new from the factory comes with its factory calibration record.
      let firmware =
        nvm.map { PenFirmware(model: model, serial: serial, seed: simulator.simSeed, nvm: $0) }
        ?? PenFirmware.factoryNew(model: model, serial: serial, seed: simulator.simSeed)
      let sim = SimulatedPen(firmware)
      sim.advance(by: PenFirmware.bootTime)
      let pen: Pen
      do {
        pen = try Pen.connect(over: LoopbackTransport(pen: sim))
      } catch {
        throw CLIError(
          "cannot connect to the simulated pen: \(error)", code: ExitStatus.deviceFault)
      }
      let session = PenSession(pen: pen, simulated: sim, stateFile: file, context: nil)
      // A new pen leaves the factory with its record; keep it from the first command on.
      try session.saveState()
      return session
    }
    guard let serial else {
      throw CLIError("give a pen's serial (--serial), or --sim for a simulated pen", code: 64)
    }
    do {
      let usb = try USBContext()
      guard let device = try usb.devices().first(where: { usb.serialNumber(of: $0) == serial })
      else {
        throw CLIError(
          "no pen with serial \(serial) on USB: penctl devices lists the pens found",
          code: ExitStatus.deviceFault)
      }
      let transport = try USBPenTransport(context: usb, device: device)
      let pen = try Pen.connect(over: transport)
      return PenSession(pen: pen, simulated: nil, stateFile: nil, context: usb)
    } catch let error as CLIError {
      throw error
    } catch {
      throw CLIError("cannot open the pen \(serial): \(error)", code: ExitStatus.deviceFault)
    }
  }

  /// Refuses, before anything is opened or written, what `open` would refuse about a simulated
  /// pen: an unknown model, a state file that cannot be read or belongs to another pen.
  static func preflight(simulator: SimulatorOptions, dataDirectory: URL) throws(CLIError) {
    guard simulator.sim else { return }
    let model = try simulatedModel(simulator)
    let serial = SimulatedPen.serial(model: model, seed: simulator.simSeed)
    if simulator.simReset { return }
    _ = try loadState(stateFile(serial: serial, in: dataDirectory), model: model, serial: serial)
  }

  static func simulatedModel(_ simulator: SimulatorOptions) throws(CLIError) -> PenModelID {
    do { return try simulator.model() } catch {
      throw CLIError(
        "unknown pen model '\(simulator.simModel)': Firmware-Specs/pen-models.json has mn100 and rf200",
        code: ExitStatus.usage)
    }
  }

  /// Where a simulated pen's memory is kept between commands.
  static func stateFile(serial: String, in dataDirectory: URL) -> URL {
    dataDirectory.appendingPathComponent("sim").appendingPathComponent("\(serial).json")
  }

  /// Reads a simulated pen's state file; nil when there is none yet (a pen new from the factory).
  static func loadState(_ file: URL, model: PenModelID, serial: String) throws(CLIError)
    -> NonVolatileMemory?
  {
    guard FileManager.default.fileExists(atPath: file.path) else { return nil }
    let nvm: NonVolatileMemory
    do {
      nvm = try JSONDecoder().decode(NonVolatileMemory.self, from: Data(contentsOf: file))
    } catch {
      throw CLIError(
        "the simulated pen's state file \(file.path) cannot be read (\(error)): pass --sim-reset to start the pen fresh",
        code: ExitStatus.badInput)
    }
    guard nvm.model == model, nvm.serial == serial else {
      throw CLIError(
        "the state file \(file.path) belongs to \(nvm.serial) (\(nvm.model.catalogueName)), not \(serial): pass --sim-reset",
        code: ExitStatus.badInput)
    }
    return nvm
  }

  /// Writes the simulated pen's non-volatile memory: to a temporary file, then renamed over the
  /// old one, so a crash leaves either the old state or the new, never half of one.
  func saveState() throws(CLIError) {
    guard let simulated, let stateFile else { return }
    let nvm = simulated.with { $0.nvm }
    do {
      try FileManager.default.createDirectory(
        at: stateFile.deletingLastPathComponent(), withIntermediateDirectories: true)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      try encoder.encode(nvm).write(to: stateFile, options: .atomic)
    } catch {
      throw CLIError(
        "cannot save the simulated pen's state to \(stateFile.path): \(error)",
        code: ExitStatus.internalError)
    }
  }

  /// Disconnects and keeps the simulated pen's memory.
  func close() throws(CLIError) {
    pen.disconnect()
    try saveState()
    _ = context
  }
}

/// A failure a command reports: the message (what was wrong, the value, the limit, what to do)
/// and the exit code that classifies it.
struct CLIError: Error, CustomStringConvertible {
  var message: String
  var code: Int32

  init(_ message: String, code: Int32) {
    self.message = message
    self.code = code
  }

  var description: String { message }
}
