import Testing
@testable import Compress

@Suite struct ShapeInferenceTests {
    func convGraph(weight: [Int], groups: Int = 1, stride: Int = 1, pad: Int = 0) -> Graph {
        Graph(inputs: [GraphInput(name: "x", sampleShape: [4, 10, 10])], outputs: ["y"],
              nodes: [Node(name: "conv", op: .conv2d(Conv2d(stride: .square(stride), padding: .same(pad), groups: groups)),
                           inputs: ["x", "w"], output: "y")],
              initializers: ["w": .zeros(weight)])
    }

    @Test func convOutputShape() throws {
        let shapes = try convGraph(weight: [8, 4, 3, 3], stride: 2, pad: 1).inferShapes(batch: 3)
        #expect(shapes["y"] == [3, 8, 5, 5])
    }

    @Test func groupedConvChecksChannels() throws {
        #expect(try convGraph(weight: [8, 2, 3, 3], groups: 2).inferShapes()["y"] == [1, 8, 8, 8])
        #expect(throws: GraphError.shapeMismatch(node: "conv", value: "w",
                                                 detail: "weight [8, 3, 3, 3] expects 3 input channels (groups 1), input has 4")) {
            try convGraph(weight: [8, 3, 3, 3]).inferShapes()
        }
    }

    @Test func undefinedInputIsNamed() {
        var g = convGraph(weight: [8, 4, 3, 3])
        g.nodes[0].inputs[1] = "missing"
        #expect(throws: GraphError.undefinedValue(node: "conv", value: "missing")) { try g.inferShapes() }
    }

    @Test func broadcasting() {
        #expect(broadcastShapes([2, 3, 4, 4], [3, 1, 1]) == [2, 3, 4, 4])
        #expect(broadcastShapes([2, 3], [4]) == nil)
    }

    @Test func ceilModePooling() {
        #expect(slidingOutputSize(input: 5, kernel: 2, stride: 2, padBefore: 0, padAfter: 0) == 2)
        #expect(slidingOutputSize(input: 5, kernel: 2, stride: 2, padBefore: 0, padAfter: 0, ceilMode: true) == 3)
    }
}
