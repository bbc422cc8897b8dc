public import PenSafety
import PenWire

extension RecordJSON {
  /// A session envelope as stored with its session: every limit, with its unit in its key.
  public init(envelope: SessionEnvelope) {
    func range(_ value: Double, _ min: Double, _ max: Double) -> RecordJSON {
      ["value": .double(value), "min": .double(min), "max": .double(max)]
    }
    self = [
      "area": .string("\(envelope.area.catalogueName)"),
      "model": .string("\(envelope.model.catalogueName)"),
      "pin_count": .int(Int64(envelope.pinCount)),
      "min_depth_mm": .double(envelope.minDepth.value),
      "max_depth_mm": .double(envelope.maxDepth.value),
      "min_speed_hz": .double(envelope.minSpeed.value),
      "max_speed_hz": .double(envelope.maxSpeed.value),
      "rf_allowed": .bool(envelope.rfAllowed),
      "max_rf_energy_per_pin_mj": .double(envelope.maxRFEnergyPerPin.value),
      "max_rf_power_w": .double(envelope.maxRFPower.value),
      "min_pulse_ms": .double(envelope.minPulse.value),
      "max_pulse_ms": .double(envelope.maxPulse.value),
      "rf_dose_cap_mj": .double(envelope.rfDoseCap.value),
      "min_impedance_ohm": .double(envelope.minImpedance.value),
      "max_impedance_ohm": .double(envelope.maxImpedance.value),
      "tissue_temperature_cutoff_c": .double(envelope.tissueTemperatureCutoff.value),
      "handpiece_temperature_cutoff_c": .double(envelope.handpieceTemperatureCutoff.value),
      "recommended_depth_mm": range(
        envelope.recommendedDepth.value.value, envelope.recommendedDepth.min.value,
        envelope.recommendedDepth.max.value),
      "recommended_speed_hz": range(
        envelope.recommendedSpeed.value.value, envelope.recommendedSpeed.min.value,
        envelope.recommendedSpeed.max.value),
      "recommended_rf_energy_per_pin_mj": range(
        envelope.recommendedRFEnergyPerPin.value.value,
        envelope.recommendedRFEnergyPerPin.min.value,
        envelope.recommendedRFEnergyPerPin.max.value),
      "default_pulse_ms": .double(envelope.defaultPulse.value),
    ]
  }
}
