import Testing
@testable import Compress

@Suite struct PassParameterTests {
    let specs = [
        ParameterSpec("sparsity", .double, default: nil, help: "fraction"),
        ParameterSpec("steps", .int, default: .int(3), help: "steps"),
        ParameterSpec("mode", .choice(["a", "b"]), default: .string("a"), help: "mode"),
        ParameterSpec("verify", .bool, default: .bool(true), help: "verify"),
    ]

    @Test func defaultsFillIn() throws {
        let p = try PassParameters(validating: ["sparsity": "0.5"], against: specs, pass: "demo")
        #expect(p.double("sparsity") == 0.5)
        #expect(p.int("steps") == 3)
        #expect(p.string("mode") == "a")
        #expect(p.bool("verify"))
    }

    @Test func everyProblemIsListedAtOnce() {
        do {
            _ = try PassParameters(validating: ["steps": "x", "mode": "c", "bogus": "1"], against: specs, pass: "demo")
            Issue.record("expected an error")
        } catch {
            #expect(error.problems == [
                "unknown parameter 'bogus' (demo takes: sparsity, steps, mode, verify)",
                "missing required parameter 'sparsity'",
                "parameter 'steps' must be integer, got 'x'",
                "parameter 'mode' must be a|b, got 'c'",
            ])
        }
    }

    @Test func registryFindsCorePasses() {
        let registry = PassRegistry(PassRegistry.corePasses)
        #expect(registry.names == ["fold-bn"])
        #expect(registry.pass(named: "fold-bn") == FoldBatchNormPass.self)
    }
}

@Suite struct FoldBatchNormPassTests {
    @Test func foldsVGGWithoutChangingOutputs() throws {
        let model = Architecture.vggSmall.build(seed: 3)
        // Give BatchNorm non-trivial statistics so folding has something to do.
        var g = model.graph
        var rng = SeededGenerator(seed: 9)
        for name in g.initializerNames where name.hasSuffix(".var") || name.hasSuffix(".scale") {
            let t = g.initializers[name]!
            g.initializers[name] = Tensor(shape: t.shape, floats: t.floats.map { _ in 0.5 + rng.nextUniform() })
        }
        for name in g.initializerNames where name.hasSuffix(".mean") {
            let t = g.initializers[name]!
            g.initializers[name] = Tensor(shape: t.shape, floats: t.floats.map { _ in rng.nextGaussian() * 0.1 })
        }
        var input = model
        input.graph = g
        let pass = try FoldBatchNormPass(parameters: PassParameters(validating: [:], against: FoldBatchNormPass.parameters, pass: "fold-bn"))
        let params = try PassParameters(validating: [:], against: FoldBatchNormPass.parameters, pass: "fold-bn")
        let (out, record) = try pass.run(on: input, context: PassContext(seed: 1), parameters: params)
        #expect(!out.graph.nodes.contains { if case .batchNorm = $0.op { true } else { false } })
        #expect(record.metrics["folded"] == 6)
        #expect(record.metrics["max-abs-diff"]! < 1e-4)
        #expect(record.metrics["params-after"]! < record.metrics["params-before"]!)
        #expect(out.metadata.history.last?.pass == "fold-bn")

        // Independent check through the reference evaluator.
        var rng2 = SeededGenerator(seed: 4)
        let x = rng2.uniformTensor([2] + input.inputShape)
        let a = try ReferenceEvaluator.run(model: input, input: x)
        let b = try ReferenceEvaluator.run(model: out, input: x)
        expectClose(b, a, tolerance: 1e-4)
    }
}
