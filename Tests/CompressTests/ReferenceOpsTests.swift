import Foundation
import Testing
@testable import Compress

/// Hand-derived values for the reference evaluator, so it is checked against
/// arithmetic rather than only against the runtime.
@Suite struct ReferenceOpsTests {
    typealias F = RuntimeFixtures

    /// The 3x3 image 1...9 as `[1, 1, 3, 3]`.
    let nine = Tensor(shape: [1, 1, 3, 3], floats: (1...9).map(Float.init))

    func evaluate(_ op: Op, _ x: Tensor, _ parameters: [(String, Tensor)] = []) throws -> Tensor {
        let graph = F.singleOp(op, sample: Array(x.shape.dropFirst()), parameters: parameters)
        return try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!
    }

    @Test func convWithOnesKernelSumsNeighbourhoods() throws {
        let ones = Tensor.filled([1, 1, 3, 3], with: 1)
        let y = try evaluate(.conv2d(Conv2d(padding: .same(1))), nine, [("w", ones)])
        #expect(y.shape == [1, 1, 3, 3])
        #expect(y.floats == [12, 21, 16, 27, 45, 33, 24, 39, 28])
        let strided = try evaluate(.conv2d(Conv2d(stride: .square(2), padding: .same(1))), nine,
                                   [("w", ones), ("b", Tensor(shape: [1], floats: [0.5]))])
        #expect(strided.floats == [12.5, 16.5, 24.5, 28.5])
    }

    @Test func convDifferenceKernelAndDilation() throws {
        let diagonal = Tensor(shape: [1, 1, 2, 2], floats: [1, 0, 0, -1])
        #expect(try evaluate(.conv2d(Conv2d()), nine, [("w", diagonal)]).floats == [-4, -4, -4, -4])
        let corners = try evaluate(.conv2d(Conv2d(dilation: .square(2))), nine, [("w", .filled([1, 1, 2, 2], with: 1))])
        #expect(corners.shape == [1, 1, 1, 1])
        #expect(corners.floats == [1 + 3 + 7 + 9])
    }

    /// Asymmetric padding: one row of zeros on top only, one column on the right only.
    @Test func convAsymmetricPadding() throws {
        let y = try evaluate(.conv2d(Conv2d(padding: Padding2(top: 1, left: 0, bottom: 0, right: 1))), nine,
                             [("w", .filled([1, 1, 2, 2], with: 1))])
        #expect(y.shape == [1, 1, 3, 3])
        #expect(y.floats == [3, 5, 3, 12, 16, 9, 24, 28, 15])
    }

    @Test func groupedConvKeepsChannelsApart() throws {
        let x = Tensor(shape: [1, 2, 1, 2], floats: [1, 2, 10, 20])
        let w = Tensor(shape: [2, 1, 1, 1], floats: [2, 3])
        #expect(try evaluate(.conv2d(Conv2d(groups: 2)), x, [("w", w)]).floats == [2, 4, 30, 60])
    }

    @Test func linearAndBatchNorm() throws {
        let y = try evaluate(.linear, Tensor(shape: [1, 2], floats: [1, 2]),
                             [("w", Tensor(shape: [2, 2], floats: [1, 1, 2, -1])), ("b", Tensor(shape: [2], floats: [0.5, 0]))])
        #expect(y.floats == [3.5, 0])
        let one = Tensor(shape: [1], floats: [1])
        let bn = try evaluate(.batchNorm(epsilon: 1), Tensor(shape: [1, 1, 1, 2], floats: [3, -1]),
                              [("g", Tensor(shape: [1], floats: [2])), ("beta", Tensor(shape: [1], floats: [0.5])),
                               ("mean", one), ("var", Tensor(shape: [1], floats: [3]))])
        // (3 - 1) / sqrt(3 + 1) * 2 + 0.5 and (-1 - 1) / 2 * 2 + 0.5.
        #expect(bn.floats == [2.5, -1.5])
    }

    @Test func maxPoolTakesWindowMaximum() throws {
        #expect(try evaluate(.maxPool(Pool2d(kernel: .square(2), stride: .square(1))), nine).floats == [5, 6, 8, 9])
        let ceil = try evaluate(.maxPool(Pool2d(kernel: .square(2), ceilMode: true)), nine)
        #expect(ceil.shape == [1, 1, 2, 2])
        #expect(ceil.floats == [5, 6, 8, 9])
        // Padding is -inf, not 0: every window of an all-negative input keeps a real value.
        let negative = Tensor(shape: [1, 1, 2, 2], floats: [-1, -2, -3, -4])
        let padded = try evaluate(.maxPool(Pool2d(kernel: .square(3), stride: .square(1), padding: .same(1))), negative)
        #expect(padded.floats == [-1, -1, -1, -1])
    }

    @Test func avgPoolDivisors() throws {
        // Ceil mode: partial windows divide by the taps inside the input, padding or not.
        for countIncludePad in [false, true] {
            let y = try evaluate(.avgPool(Pool2d(kernel: .square(2), ceilMode: true), countIncludePad: countIncludePad), nine)
            #expect(y.floats == [3, 4.5, 7.5, 9])
        }
        let ones = Tensor.filled([1, 1, 2, 2], with: 1)
        let window = Pool2d(kernel: .square(3), stride: .square(1), padding: .same(1))
        #expect(try evaluate(.avgPool(window, countIncludePad: true), ones).floats == [Float](repeating: 4 / 9, count: 4))
        #expect(try evaluate(.avgPool(window, countIncludePad: false), ones).floats == [1, 1, 1, 1])
    }

    @Test func globalAvgPoolAndFlattenAndReshape() throws {
        let x = Tensor(shape: [1, 2, 1, 2], floats: [1, 3, 10, 20])
        let pooled = try evaluate(.globalAvgPool, x)
        #expect(pooled.shape == [1, 2, 1, 1])
        #expect(pooled.floats == [2, 15])
        #expect(try evaluate(.flatten(axis: 1), x).shape == [1, 4])
        let reshaped = try evaluate(.reshape(shape: [0, -1, 2]), x)
        #expect(reshaped.shape == [1, 2, 2])
        #expect(reshaped.floats == x.floats)
    }

    @Test func softmaxOfZeroAndLog2() throws {
        let y = try evaluate(.softmax(axis: 1), Tensor(shape: [1, 2], floats: [0, Float(M_LN2)]))
        #expect(F.isClose(y, Tensor(shape: [1, 2], floats: [1.0 / 3, 2.0 / 3]), relative: 1e-6))
        // Along axis 1 of [1, 2, 1, 2]: pairs (x[0,0,0,j], x[0,1,0,j]).
        let strided = try evaluate(.softmax(axis: 1), Tensor(shape: [1, 2, 1, 2], floats: [0, 5, 0, 5]))
        #expect(strided.floats == [0.5, 0.5, 0.5, 0.5])
    }

    @Test func activations() throws {
        let x = Tensor(shape: [1, 4], floats: [-2, 0, 3, 7])
        #expect(try evaluate(.relu, x).floats == [0, 0, 3, 7])
        #expect(try evaluate(.relu6, x).floats == [0, 0, 3, 6])
        #expect(F.isClose(try evaluate(.leakyRelu(alpha: 0.1), x), Tensor(shape: [1, 4], floats: [-0.2, 0, 3, 7]), relative: 1e-6))
        #expect(try evaluate(.sigmoid, x).floats[1] == 0.5)
        #expect(try evaluate(.tanh, x).floats[1] == 0)
        #expect(try evaluate(.dropout(ratio: 0.5), x) == x)
    }

    @Test func binaryOpsBroadcastNumpyStyle() throws {
        let column = Tensor(shape: [1, 2, 1], floats: [1, 2])
        let row = Tensor(shape: [3], floats: [10, 20, 30])
        let sum = try evaluate(.add, column, [("k", row)])
        #expect(sum.shape == [1, 2, 3])
        #expect(sum.floats == [11, 21, 31, 12, 22, 32])
        #expect(try evaluate(.sub, column, [("k", row)]).floats == [-9, -19, -29, -8, -18, -28])
        #expect(try evaluate(.mul, column, [("k", row)]).floats == [10, 20, 30, 20, 40, 60])
        #expect(try evaluate(.div, column, [("k", Tensor(shape: [1], floats: [4]))]).floats == [0.25, 0.5])
    }

    @Test func concatAlongFirstAndLastAxes() throws {
        let x = Tensor(shape: [1, 2, 2], floats: [1, 2, 3, 4])
        let k = Tensor(shape: [1, 2, 1], floats: [9, 8])
        let last = try evaluate(.concat(axis: -1), x, [("k", k)])
        #expect(last.shape == [1, 2, 3])
        #expect(last.floats == [1, 2, 9, 3, 4, 8])
        let middle = try evaluate(.concat(axis: 1), x, [("k", Tensor(shape: [1, 1, 2], floats: [5, 6]))])
        #expect(middle.floats == [1, 2, 3, 4, 5, 6])
    }

    @Test func modelNormalizationIsAppliedPerChannel() throws {
        let graph = F.singleOp(.dropout(ratio: 0), sample: [2, 1, 1])
        let model = Model(graph: graph, metadata: ModelMetadata(normalization: Normalization(mean: [0.5, 0], std: [0.25, 2])))
        let y = try ReferenceEvaluator.run(model: model, input: Tensor(shape: [1, 2, 1, 1], floats: [1, 1]))
        #expect(y.floats == [2, 0.5])
        #expect(try Session(model: model).run(Tensor(shape: [1, 2, 1, 1], floats: [1, 1])).floats == [2, 0.5])
    }
}
