import Testing
@testable import Compress

@Suite struct ONNXRoundTripTests {
    /// A built-in model with BatchNorm statistics far from identity.
    func model(_ arch: Architecture) -> Model {
        var m = arch.build(seed: 21)
        var rng = SeededGenerator(seed: 5)
        for name in m.graph.initializerNames {
            let t = m.graph.initializers[name]!
            if name.hasSuffix(".var") || name.hasSuffix(".scale") {
                m.graph.initializers[name] = Tensor(shape: t.shape, floats: t.floats.map { _ in 0.5 + rng.nextUniform() })
            } else if name.hasSuffix(".mean") {
                m.graph.initializers[name] = Tensor(shape: t.shape, floats: t.floats.map { _ in rng.nextGaussian() * 0.2 })
            }
        }
        return m
    }

    @Test(arguments: Architecture.allCases)
    func binToONNXToBinPreservesOutputs(_ arch: Architecture) throws {
        let original = model(arch)
        let imported = try ONNXImporter.decode(try ONNXExporter.encode(original))
        // The normalization comes back as metadata and the layers as they were.
        #expect(imported.metadata.normalization == original.metadata.normalization)
        #expect(imported.metadata.classNames == original.metadata.classNames)
        #expect(imported.metadata.architecture == original.metadata.architecture)
        #expect(imported.graph.nodes.map(\.op) == original.graph.nodes.map(\.op))
        #expect(imported.inputShape == original.inputShape)
        // And through the native file again.
        let back = try ModelFile.decode(try ModelFile.encode(imported))
        var rng = SeededGenerator(seed: 8)
        // One image for the 224x224 networks, to keep the test quick.
        let x = rng.uniformTensor([original.inputShape == [3, 224, 224] ? 1 : 3] + original.inputShape)
        let expected = try Session(model: original).run(x)
        let actual = try Session(model: back).run(x)
        expectClose(actual, expected, tolerance: 1e-5)
    }
}
