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
                                   bytes: size.bytes, bitsPerWeight: Double(size.bytes * 8) / Double(max(t.count, 1)))
            if case .int8(let grid) = precisions[name]! {
                (row.axis, row.scales, row.zeroPoints, row.qmin, row.qmax)
                    = (grid.axis, grid.scales, grid.zeroPoints, grid.qmin, grid.qmax)
            }
            return row
        }
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
