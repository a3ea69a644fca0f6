import SIMDKernels

// The layout of each value of a training plan: plain NCHW, or blocked NCHW8c
// (`[N][C/8][H][W][8]`) between kernels that read and write it, so a chain
// conv -> BatchNorm -> ReLU -> pool -> conv does not reorder its maps around
// every conv. A value's gradient has the value's layout. Only kernels see the
// blocked layout: `TrainingGraph.value(named:)`, seeds and outputs are plain.

/// How a training kernel can read and write NCHW8c values.
enum TrainingLayoutRule: Equatable {
    /// Every input and the output plain NCHW.
    case plain
    /// Data input 0 and the output each in either layout (a dense conv).
    case independent
    /// Every data input and the output in the same layout (element-wise ops of
    /// one shape, BatchNorm, pooling).
    case uniform
    /// Input 0 in either layout, the output plain (global average pooling).
    case plainOutput
}

/// A training kernel that can work on NCHW8c values. The planner calls
/// `useLayouts` once, before any forward, with the layouts it chose within `layoutRule`.
protocol BlockedLayoutTrainingKernel: TrainingKernel {
    var layoutRule: TrainingLayoutRule { get }
    /// Sets whether each data input and the output are NCHW8c (false: plain NCHW).
    func useLayouts(inputs: [Bool], output: Bool)
    /// Whether `backward` honours `TrainingBinding.assignsInputGradient` (writes
    /// every element of the gradient of input 0 when asked to).
    var canAssignInputGradient: Bool { get }
}

extension BlockedLayoutTrainingKernel {
    var canAssignInputGradient: Bool { false }
}

extension TrainingPlan {
    /// Chooses NCHW8c for every value that can be: 4-D with a channel count
    /// that is a multiple of 8 (same element count in both layouts), computed
    /// by a kernel that can write it, not a graph output nor the source of an
    /// alias (Flatten/Reshape read plain storage), and read only by kernels
    /// that can read it. A fixed point: a value is made plain when a reader
    /// needs it plain, or a `uniform` kernel has any member plain; it ends as
    /// values only ever become plain. Then tells every layout-aware kernel its layouts.
    ///
    /// - Parameter shapes: every value's shape at some batch size (the channel counts matter).
    mutating func chooseBlockedLayouts(shapes: [[Int]]) {
        var rules = steps.map { step -> TrainingLayoutRule in
            (step.kernel as? BlockedLayoutTrainingKernel)?.layoutRule ?? .plain
        }
        for (s, step) in steps.enumerated() where rules[s] == .uniform && step.inputs.count > 1
            && step.inputs.contains(where: { shapes[$0] != shapes[step.output] }) {
            rules[s] = .plain  // broadcasting element-wise ops index plain NCHW
        }
        var blocked = names.indices.map { id -> Bool in
            guard case .computed = sources[id] else { return false }
            return shapes[id].count == 4 && shapes[id][1] % 8 == 0 && shapes[id][1] > 0
        }
        for id in outputIDs { blocked[id] = false }
        for id in sources.indices { if case .alias = sources[id] { blocked[root(id)] = false } }
        for (s, step) in steps.enumerated() where rules[s] == .plain || rules[s] == .plainOutput {
            blocked[step.output] = false
        }
        var changed = true
        while changed {
            changed = false
            func makePlain(_ id: Int) {
                if blocked[id] { blocked[id] = false; changed = true }
            }
            for (s, step) in steps.enumerated() {
                switch rules[s] {
                case .plain: step.inputs.forEach(makePlain)
                case .independent, .plainOutput: step.inputs.dropFirst().forEach(makePlain)
                case .uniform:
                    let members = step.inputs + [step.output]
                    if members.contains(where: { !blocked[$0] }) { members.forEach(makePlain) }
                }
            }
        }
        self.blocked = blocked
        for step in steps {
            (step.kernel as? BlockedLayoutTrainingKernel)?.useLayouts(inputs: step.inputs.map { blocked[$0] },
                                                                       output: blocked[step.output])
        }
    }
}

extension TrainingPlan {
    /// Fuses a ReLU or ReLU6 into the step before it when it alone reads that
    /// step's output and the step is a blocked BatchNorm or a same-shape blocked
    /// Add: that step writes the activation's output and its backward masks the
    /// activation's output gradient itself (``BatchNormTrainingKernel/fusedActivationUpper``,
    /// ``BinaryTrainingKernel/fusedActivationUpper``), which saves a full read
    /// and write of the map each way and the gradient of the intermediate
    /// value. That value is then `fused` (an alias of the activation's output,
    /// never stored on its own); values in `kept` are not fused.
    mutating func fuseActivations(keeping kept: Set<Int>) {
        var readers = [Int](repeating: 0, count: names.count)
        for step in steps { for id in step.inputs { readers[root(id)] += 1 } }
        for id in outputIDs { readers[root(id)] += 1 }
        for id in sources.indices where root(id) != id { readers[root(id)] += 1 }
        var removed = Set<Int>()
        for s in steps.indices.dropLast() {
            guard let activation = steps[s + 1].kernel as? ActivationTrainingKernel else { continue }
            let value = steps[s].output
            guard blocked[value], steps[s + 1].inputs == [value], readers[value] == 1, !kept.contains(value) else { continue }
            let upper: Float
            switch activation.op {
            case .relu: upper = .infinity
            case .relu6: upper = 6
            default: continue
            }
            if let norm = steps[s].kernel as? BatchNormTrainingKernel, norm.blocked {
                norm.fusedActivationUpper = upper
            } else if let sum = steps[s].kernel as? BinaryTrainingKernel, sum.op == .add {
                sum.fusedActivationUpper = upper  // blocked, so same-shape operands
            } else {
                continue
            }
            steps[s].output = steps[s + 1].output
            sources[value] = .alias(of: steps[s + 1].output)
            fused[value] = true
            removed.insert(s + 1)
        }
        steps = steps.indices.filter { !removed.contains($0) }.map { steps[$0] }
    }
}

extension TrainingPlan {
    /// For each value gradient: when the step whose backward writes it first
    /// (the value's last reader in graph order) reads it once, as input 0, and
    /// can assign (``BlockedLayoutTrainingKernel/canAssignInputGradient``), that
    /// step writes the gradient instead of adding into it, so it is not zeroed
    /// before the backward (no fill, and no read of zeros). Graph outputs are
    /// seeded before the steps run and keep adding.
    mutating func chooseAssigningWriters() {
        assigningStep = [Int?](repeating: nil, count: names.count)
        var lastReader = [Int?](repeating: nil, count: names.count)
        for (s, step) in steps.enumerated() { for id in step.inputs { lastReader[root(id)] = s } }
        let outputs = Set(outputIDs.map(root))
        for id in names.indices where root(id) == id && needsGradient[id] && !outputs.contains(id) {
            guard let s = lastReader[id], steps[s].inputs.first == id,
                  !steps[s].inputs.dropFirst().contains(where: { root($0) == id }),
                  (steps[s].kernel as? BlockedLayoutTrainingKernel)?.canAssignInputGradient == true else { continue }
            assigningStep[id] = s
        }
    }
}

/// A blocked `[N, C, H, W]` value (C a multiple of 8) copied out plain.
func blockedToPlainTensor(_ x: UnsafePointer<Float>, shape: [Int]) -> Tensor {
    let (n, c, plane) = (shape[0], shape[1], shape[2] &* shape[3])
    var floats = [Float](repeating: 0, count: shape.elementCount)
    floats.withUnsafeMutableBufferPointer { y in
        for i in 0..<n { blockedToPlain(x + i &* c &* plane, channels: c, plane: plane, y.baseAddress! + i &* c &* plane) }
    }
    return Tensor(shape: shape, floats: floats)
}

/// `y += x` where `x` is plain `[N, C, H, W]` and `y` blocked (C a multiple of 8).
func addPlainToBlocked(_ x: UnsafePointer<Float>, shape: [Int], into y: UnsafeMutablePointer<Float>) {
    let (n, c, plane) = (shape[0], shape[1], shape[2] &* shape[3])
    for i in 0..<n {
        for channel in 0..<c {
            let src = x + (i &* c &+ channel) &* plane
            let dst = y + (((i &* c &+ channel / 8 &* 8) &* plane) &+ channel % 8)
            for k in 0..<plane { dst[k &* 8] += src[k] }
        }
    }
}

/// Element-wise: the same loops serve either layout when input and output share it.
extension ActivationTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .uniform }
    func useLayouts(inputs: [Bool], output: Bool) {}
}

/// Element-wise on operands of the output's shape (the planner keeps broadcasting ones plain).
extension BinaryTrainingKernel: BlockedLayoutTrainingKernel {
    var layoutRule: TrainingLayoutRule { .uniform }
    func useLayouts(inputs: [Bool], output: Bool) {}
}

/// `dB[c] += Σ dY[c][k]` over the `plane` pixels of each channel of a blocked
/// image (`channels` a multiple of 8): a conv's bias gradient from a blocked `dY`.
func addBlockedPlaneSums(_ dY: UnsafePointer<Float>, channels: Int, plane: Int, into dB: UnsafeMutablePointer<Float>) {
    for cb in 0..<channels / 8 {
        let block = dY + cb &* plane &* 8
        var (s0, s1) = (SIMD8<Float>(), SIMD8<Float>())
        var k = 0
        while k &+ 1 < plane {
            s0 += load8(block + k &* 8)
            s1 += load8(block + (k &* 8 &+ 8))
            k &+= 2
        }
        if k < plane { s0 += load8(block + k &* 8) }
        store8(load8(dB + cb &* 8) + (s0 + s1), dB + cb &* 8)
    }
}
