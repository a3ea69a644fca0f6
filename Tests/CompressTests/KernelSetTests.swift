import Testing
@testable import Compress

/// Kernel sets: every set this CPU runs plans the built-in models and agrees
/// with the reference evaluator; a set it lacks is refused with a clear error.
@Suite struct KernelSetTests {
    typealias F = RuntimeFixtures

    @Test(arguments: [Architecture.vggSmall, .resnet20, .mobilenetSmall])
    func everySupportedSetMatchesTheReference(_ architecture: Architecture) throws {
        let model = architecture.build(seed: 3)
        let x = F.uniform([2] + model.inputShape, seed: 4, in: 0...1)
        let expected = try ReferenceEvaluator.run(model: model, input: x)
        for set in KernelSet.supported {
            let session = try Session(model: model, threads: 1, kernels: set)
            #expect(session.kernels == set)
            let y = try session.run(x)
            #expect(F.isClose(y, expected, relative: 1e-4), "\(architecture) with \(set): max diff \(F.maxAbsDifference(y, expected))")
        }
    }

    @Test func portableKeepsEveryValuePlain() throws {
        let plan = try ExecutionPlan(graph: Architecture.resnet20.build(seed: 1).graph, kernels: .portable)
        #expect(plan.kernels == .portable)
        #expect(!plan.layouts.contains(.blocked))
        #expect(!plan.steps.contains { $0.kernel is BlockedConvKernel })
    }

    @Test func bestIsTheFirstSupportedSet() {
        #expect(KernelSet.best == KernelSet.supported.first)
        #expect(KernelSet.portable.isSupported)
        #expect(KernelSet.supported.allSatisfy { (try? $0.checkedSupported()) == $0 })
    }

    /// Only a CPU lacking a set can show the refusal; elsewhere the check is the one above.
    @Test(arguments: KernelSet.allCases.filter { !$0.isSupported })
    func unsupportedSetIsRefused(_ set: KernelSet) throws {
        let model = Architecture.lenet5.build(seed: 1)
        #expect(throws: KernelSetError.unsupported(set)) { try Session(model: model, threads: 1, kernels: set) }
        #expect(KernelSetError.unsupported(set).description.contains("lacks"))
    }
}
