extension TrainingGraph {
    /// Masks every conv and linear weight that holds exact zeros, so those
    /// weights stay zero through training (see ``ParameterPolicy/mask``).
    /// Weights without zeros, parameters that already have a mask, and hashed
    /// parameters (their zeros are buckets at zero, which training may move),
    /// are left alone.
    public func maskZeroWeights() {
        for name in parameterNames {
            let p = parameters[name]!
            guard p.role == .weight, p.policy.mask == nil, p.policy.codebook?.negated == nil,
                  p.values.contains(0) else { continue }
            p.applyMask(p.values.map { $0 == 0 ? 0 : 1 })
        }
    }
}
