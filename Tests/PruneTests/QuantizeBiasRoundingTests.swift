import Foundation
import Testing
@testable import Compress
@testable import Prune

/// `quantize --format int8` rounds the biases of int8 layers that read
/// quantized activations onto their int32 grids, which the QDQ ONNX export
/// stores as integers.
@Suite struct QuantizeBiasRoundingTests {
    func quantized(_ model: Model, _ raw: [String: String] = [:]) throws -> Model {
        let splits = quadrantSplits()
        let (pass, parameters) = try quantizePass(["format": "int8"].merging(raw) { $1 })
        return try pass.run(on: model, context: PassContext(seed: 1, data: DataProvider { splits }), parameters: parameters).0
    }

    /// Each bias element is round_half_even(b / (sx * sw_c)) * (sx * sw_c), computed here in float32 from the
    /// model's bias before quantization, the input quantizer's scale and the weight's per-channel scales.
    @Test func biasesAreRoundedOntoInputScaleTimesWeightScale() throws {
        var model = Architecture.lenet300.build(seed: 3, inputShape: [1, 8, 8], classes: 4)
        // Freshly initialized biases are zero, on every grid; give them values to round.
        for node in model.graph.nodes where node.op == .linear {
            let count = model.graph.initializers[node.inputs[2]]!.count
            model.graph.initializers[node.inputs[2]] = Tensor(shape: [count], floats: (0..<count).map { Float(sin(Double($0) + 0.5)) * 0.3 })
        }
        let out = try quantized(model)
        var checked = 0
        for node in out.graph.nodes where node.op == .linear {
            let (input, weight, bias) = (node.inputs[0], node.inputs[1], node.inputs[2])
            let sx = try #require(out.graph.activationGrid(of: input)).scale
            guard case .int8(let grid)? = out.metadata.storage.precisions[weight] else {
                Issue.record("\(weight) has no int8 precision")
                continue
            }
            let before = model.graph.initializers[bias]!.floats
            let after = out.graph.initializers[bias]!.floats
            for (c, b) in before.enumerated() {
                let s = sx * grid.scales[grid.scales.count == 1 ? 0 : c]
                let expected = (b / s).rounded(.toNearestOrEven) * s
                #expect(after[c].bitPattern == expected.bitPattern, "\(bias)[\(c)]: \(after[c]) vs \(expected)")
            }
            // The rounding moved at least one value (the biases were not on the grid before).
            #expect(zip(before, after).contains { $0 != $1 })
            checked += 1
        }
        #expect(checked == 3)
        // The export then stores them as int32 without complaint.
        let spec = try ONNXModelSpec(out, opset: 13)
        #expect(spec.initializers.filter { $0.tensor.dataType == .int32 && !$0.name.hasSuffix("zero_point") }.map(\.name)
            == ["fc1.bias.quantized", "fc2.bias.quantized", "fc3.bias.quantized"])
    }

    @Test func weightsOnlyQuantizationLeavesBiasesAlone() throws {
        let model = Architecture.lenet300.build(seed: 3, inputShape: [1, 8, 8], classes: 4)
        let out = try quantized(model, ["activations": "none"])
        for node in out.graph.nodes where node.op == .linear {
            #expect(out.graph.initializers[node.inputs[2]] == model.graph.initializers[node.inputs[2]])
        }
    }

    @Test func changingABiasAfterQuantizeIsRefusedByTheExport() throws {
        var out = try quantized(Architecture.lenet300.build(seed: 3, inputShape: [1, 8, 8], classes: 4))
        var bias = out.graph.initializers["fc2.bias"]!.floats
        bias[0] = bias[0].nextUp
        out.graph.initializers["fc2.bias"] = Tensor(shape: [bias.count], floats: bias)
        #expect(throws: ONNXExportError.biasOffGrid(tensor: "fc2.bias", node: "fc2", value: bias[0])) {
            try ONNXExporter.encode(out)
        }
    }
}
