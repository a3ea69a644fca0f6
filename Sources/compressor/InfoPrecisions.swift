import Compress
import Foundation

extension InfoReport {
    /// How one tensor stored narrower than float32 is stored: its precision
    /// and, for an integer grid, the quantization parameters.
    struct PrecisionRow: Encodable {
        var tensor: String
        var precision: String
        var encoding: String
        var bytes: Int
        var bitsPerWeight: Double
        /// The dimension the scales run along (nil: one scale for the tensor).
        var axis: Int?
        var scales: [Float]?
        var zeroPoints: [Int32]?
        var qmin: Int32?
        var qmax: Int32?
    }

    /// The rows of every tensor with a precision record, by name (nil when there are none).
    static func precisionRows(_ model: Model, sizes: [String: EncodedTensorSize]) -> [PrecisionRow]? {
        let precisions = model.metadata.storage.precisions
        guard !precisions.isEmpty else { return nil }
        return precisions.keys.sorted().compactMap { name in
            guard let t = model.graph.initializers[name], let size = sizes[name] else { return nil }
            var row = PrecisionRow(tensor: name, precision: precisions[name]!.name, encoding: size.encoding,
                                   bytes: size.bytes, bitsPerWeight: TensorStorageCost.bits(size.bytes, per: t.count))
            if case .int8(let grid) = precisions[name]! {
                (row.axis, row.scales, row.zeroPoints, row.qmin, row.qmax)
                    = (grid.axis, grid.scales, grid.zeroPoints, grid.qmin, grid.qmax)
            }
            return row
        }
    }

    /// One activation quantizer (a `quantizeDequantize` node).
    struct ActivationRow: Encodable {
        var node: String
        var value: String
        var type: String
        var scale: Float
        var zeroPoint: Int32
    }

    /// The activation quantizers of `graph`, in node order (nil when there are none).
    static func activationRows(_ graph: Graph) -> [ActivationRow]? {
        let rows = graph.nodes.compactMap { node -> ActivationRow? in
            guard case .quantizeDequantize(let q) = node.op else { return nil }
            return ActivationRow(node: node.name, value: node.inputs[0], type: q.signed ? "int8" : "uint8",
                                 scale: q.scale, zeroPoint: q.zeroPoint)
        }
        return rows.isEmpty ? nil : rows
    }

    /// The activation table of `info`'s text.
    static func activationText(_ rows: [ActivationRow]) -> String {
        "\n\nactivation quantization (QuantizeLinear + DequantizeLinear, per tensor):\n"
            + formatTable(["node", "value", "type", "scale", "zero point"], rows.map {
                [$0.node, $0.value, $0.type, String(format: "%.6g", $0.scale), String($0.zeroPoint)]
            })
    }

    /// The precision table of `info`'s text.
    static func precisionText(_ rows: [PrecisionRow]) -> String {
        func range<T: Comparable & CustomStringConvertible>(_ v: [T]?, _ show: (T) -> String) -> String {
            guard let v, let lo = v.min(), let hi = v.max() else { return "" }
            return lo == hi ? show(lo) : "\(show(lo))..\(show(hi))"
        }
        let grids = rows.contains { $0.qmin != nil }
        let table = rows.map { r in
            [r.tensor, r.precision, r.encoding, ReportFormat.grouped(r.bytes), String(format: "%.2f", r.bitsPerWeight)]
                + (grids ? [r.qmin.map { "\($0)..\(r.qmax!)" } ?? "", range(r.scales) { String(format: "%.4g", $0) },
                            range(r.zeroPoints) { String($0) }] : [])
        }
        return "\n\nprecision (stored narrower than float32, computed in float32):\n"
            + formatTable(["tensor", "precision", "encoding", "bytes", "bits/weight"]
                          + (grids ? ["integers", "scale", "zero point"] : []), table)
    }
}
