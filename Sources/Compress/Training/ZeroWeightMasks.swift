extension TrainingGraph {
    /// Masks every conv and linear weight that holds exact zeros, so those
    /// weights stay zero through training (see ``ParameterPolicy/mask``).
    /// Weights without zeros, and parameters that already have a mask, are left alone.
    public func maskZeroWeights() {
        for name in parameterNames {
            let p = parameters[name]!
            guard p.role == .weight, p.policy.mask == nil, p.values.contains(0) else { continue }
            p.applyMask(p.values.map { $0 == 0 ? 0 : 1 })
        }
    }
}
