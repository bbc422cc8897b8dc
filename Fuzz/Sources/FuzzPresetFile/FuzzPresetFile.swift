// libFuzzer target for PenClinic's preset file decoder: PresetFile.decode, the path every clinic
// preset file (penctl treat --preset-file, PresetLibrary.adding(contentsOf:)) takes.
//
// Input: the whole input is the file. It is decoded as the loader would read it from disk, as
// bytes; when those bytes are not valid UTF-8 (which the decoder refuses up front) they are also
// decoded after a lossy UTF-8 repair, so that mutations which break the encoding still reach the
// YAML and schema layers. Seeds are plain preset files, so any .yaml file can be dropped into the
// corpus.
//
// Must never crash, hang (libFuzzer -timeout) or grow memory without bound (-rss_limit_mb). On
// a refusal: at least one issue, each at line and column >= 1 and with a message. On success
// (invariants; a violation calls fatalError, which libFuzzer reports as a crash):
//   1. Between 1 and PresetFile.maxPresets presets, with distinct valid ids and non-empty names,
//      a real treatment area, and the origin given.
//   2. Every default, minimum and maximum is a finite number > 0, and min <= default <= max.
//   3. Within the area's hard limits (treatment-areas.json): depth <= maxDepth (maxRFDepth for an
//      RF preset), speed <= maxSpeed, RF only where the area allows it, RF energy <=
//      maxRFEnergyPerPin, dose cap <= the area's; a mechanical preset carries no RF at all.
//   4. Every preset builds a session envelope on every pen model of its kind for every skin type,
//      and that envelope is inside the area's and the pen's hard limits and holds the preset's
//      recommended ranges (scaled for the skin type, for RF energy); RF power at the maximum
//      energy (energy x pins / pulse) is within the pen's.
//   5. A preset of the wrong kind for a pen is refused, never built.

import Foundation
import PenClinic
import PenSafety
import PenWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPresetFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  guard let data else { return 0 }
  let bytes = UnsafeBufferPointer(start: data, count: size)
  check(Data(buffer: bytes))
  let repaired = String(decoding: bytes, as: UTF8.self)
  if repaired.utf8.count != size || !repaired.utf8.elementsEqual(bytes) {
    check(Data(repaired.utf8))
  }
  return 0
}

let origin = PresetOrigin.file("fuzz.yaml")

func check(_ data: Data) {
  let presets: [Preset]
  do {
    presets = try PresetFile.decode(data, file: "fuzz.yaml", origin: origin)
  } catch {
    invariant(!error.issues.isEmpty, "a refusal with no issue", data)
    for issue in error.issues {
      invariant(
        issue.line >= 1 && issue.column >= 1 && !issue.message.isEmpty && issue.file == "fuzz.yaml",
        "a malformed issue: line \(issue.line), column \(issue.column), '\(issue)'", data)
    }
    return
  }
  checkAccepted(presets, data)
}

func checkAccepted(_ presets: [Preset], _ data: Data) {
  invariant(
    (1...PresetFile.maxPresets).contains(presets.count), "\(presets.count) presets accepted", data)
  invariant(Set(presets.map(\.id)).count == presets.count, "duplicate ids accepted", data)
  for preset in presets {
    let p = "preset \(preset.id)"
    invariant(
      !preset.id.isEmpty && preset.id.count <= 64
        && preset.id.unicodeScalars.allSatisfy {
          ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        },
      "\(p): invalid id accepted", data)
    invariant(
      !preset.name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
      "\(p): empty name", data)
    invariant(preset.origin == origin && !preset.isTestPatch, "\(p): wrong origin", data)
    guard let area = TreatmentAreaLimits.of(preset.area) else {
      invariant(false, "\(p): area \(preset.area) has no limits", data)
      return
    }
    let l = preset.limits
    checkRange(l.depth.value.value, l.depth.min.value, l.depth.max.value, "\(p) depth", data)
    checkRange(l.speed.value.value, l.speed.min.value, l.speed.max.value, "\(p) speed", data)
    invariant(l.speed.max.value <= area.maxSpeed.value, "\(p): speed above the area's", data)
    switch preset.kind {
    case .mechanical:
      invariant(l.depth.max.value <= area.maxDepth.value, "\(p): depth above the area's", data)
      invariant(
        !l.usesRF && l.rfEnergyPerPin == .exactly(.zero) && l.rfPulseDuration == .zero
          && l.rfDoseCap == nil && l.tissueTemperatureCutoff == nil,
        "\(p): a mechanical preset carries RF: \(l)", data)
    case .rf:
      invariant(area.rfAllowed, "\(p): RF where the area allows none", data)
      invariant(l.depth.max.value <= area.maxRFDepth.value, "\(p): depth above the area's", data)
      let e = l.rfEnergyPerPin
      checkRange(e.value.value, e.min.value, e.max.value, "\(p) RF energy", data)
      invariant(
        e.max.value <= area.maxRFEnergyPerPin.value, "\(p): RF energy above the area's", data)
      invariant(
        l.rfPulseDuration.value.isFinite && l.rfPulseDuration.value > 0,
        "\(p): pulse \(l.rfPulseDuration)", data)
      if let cap = l.rfDoseCap {
        invariant(
          cap.value.isFinite && cap.value > 0 && cap.value <= area.rfDoseCap.value,
          "\(p): dose cap \(cap) beyond the area's \(area.rfDoseCap)", data)
      }
    }
    checkEnvelopes(preset, area: area, data)
  }
}

func checkRange(_ value: Double, _ min: Double, _ max: Double, _ what: String, _ data: Data) {
  invariant(
    [value, min, max].allSatisfy { $0.isFinite && $0 > 0 } && min <= value && value <= max,
    "\(what): default \(value) not in \(min)...\(max), or not a positive number", data)
}

/// Invariants 4 and 5, on every pen model and skin type.
func checkEnvelopes(_ preset: Preset, area: TreatmentAreaLimits, _ data: Data) {
  for raw in 0...255 {
    guard let model = PenModelID(rawValue: UInt8(raw)) else { continue }
    let pen = PenCapability.of(model)
    for skinRaw in 1...6 {
      guard let skin = FitzpatrickType(rawValue: UInt8(skinRaw)) else { continue }
      let what = "preset \(preset.id) on \(model), skin \(skinRaw)"
      let envelope: SessionEnvelope
      do {
        envelope = try preset.envelope(model: model, skin: skin)
      } catch {
        invariant(
          pen.hasRF != (preset.kind == .rf), "\(what): accepted but refused: \(error)", data)
        continue
      }
      invariant(
        pen.hasRF == (preset.kind == .rf), "\(what): built on a pen of the other kind", data)
      let limits = preset.limits(for: skin)
      invariant(
        envelope.area == preset.area && envelope.model == model,
        "\(what): envelope for \(envelope.area) on \(envelope.model)", data)
      let areaDepth = preset.kind == .rf ? area.maxRFDepth : area.maxDepth
      invariant(
        envelope.maxDepth.value <= min(pen.maxDepth.value, areaDepth.value)
          && envelope.minDepth.value >= pen.minDepth.value
          && envelope.maxSpeed.value <= min(pen.maxSpeed.value, area.maxSpeed.value),
        "\(what): envelope beyond the hard limits: \(envelope)", data)
      invariant(
        envelope.recommendedDepth == limits.depth && envelope.recommendedSpeed == limits.speed
          && limits.depth.max.value <= envelope.maxDepth.value
          && limits.depth.min.value >= envelope.minDepth.value
          && limits.speed.max.value <= envelope.maxSpeed.value
          && limits.speed.min.value >= envelope.minSpeed.value,
        "\(what): the preset's ranges are not inside its envelope: \(envelope)", data)
      if preset.kind == .rf {
        invariant(
          envelope.rfAllowed && envelope.maxDepth.value <= area.maxRFDepth.value
            && envelope.maxRFEnergyPerPin.value
              <= min(pen.maxRFEnergyPerPin.value, area.maxRFEnergyPerPin.value)
            && envelope.rfDoseCap.value <= area.rfDoseCap.value
            && envelope.recommendedRFEnergyPerPin == limits.rfEnergyPerPin
            && limits.rfEnergyPerPin.max.value <= envelope.maxRFEnergyPerPin.value
            && envelope.tissueTemperatureCutoff.value <= pen.maxTissueTemperatureCutoff.value
            && envelope.defaultPulse.value >= pen.minPulse.value
            && envelope.defaultPulse.value <= pen.maxPulse.value,
          "\(what): RF envelope beyond the hard limits: \(envelope)", data)
        let watts =
          limits.rfEnergyPerPin.max.value * Double(pen.pinCount) / limits.rfPulseDuration.value
        invariant(
          watts <= pen.maxRFPower.value,
          "\(what): \(watts) W at the maximum energy, above the pen's \(pen.maxRFPower)", data)
      }
    }
  }
}

/// fatalError, which prints its message in release builds too (precondition's is dropped there).
func invariant(_ condition: Bool, _ message: @autoclosure () -> String, _ input: Data) {
  if !condition {
    fatalError(
      "invariant violated: \(message())\n  input (\(input.count) bytes): "
        + String(decoding: input.prefix(2048), as: UTF8.self).debugDescription)
  }
}
