/// Why one node cannot be imported. Converters throw it; the importer collects
/// every one before failing. `node`/`opType` override the node at fault when
/// the problem lies with an earlier node (a Pad that cannot be folded).
struct UnsupportedFeature: Error {
    var reason: String
    var node: String? = nil
    var opType: String? = nil

    init(_ reason: String, node: String? = nil, opType: String? = nil) {
        self.reason = reason; self.node = node; self.opType = opType
    }
}

/// Typed access to a node's attributes, with ONNX's defaults.
extension ONNXNodeProto {
    func int(_ name: String, default value: Int) throws(UnsupportedFeature) -> Int {
        switch attributes[name] {
        case nil: return value
        case .int(let v)?: return try checkedInt(v, name)
        default: throw UnsupportedFeature("attribute \(name) must be an int")
        }
    }

    func float(_ name: String, default value: Float) throws(UnsupportedFeature) -> Float {
        switch attributes[name] {
        case nil: return value
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        default: throw UnsupportedFeature("attribute \(name) must be a float")
        }
    }

    func ints(_ name: String) throws(UnsupportedFeature) -> [Int]? {
        switch attributes[name] {
        case nil: return nil
        case .ints(let v)?:
            var out: [Int] = []
            for x in v { out.append(try checkedInt(x, name)) }
            return out
        default: throw UnsupportedFeature("attribute \(name) must be a list of ints")
        }
    }

    func string(_ name: String, default value: String) throws(UnsupportedFeature) -> String {
        switch attributes[name] {
        case nil: return value
        case .string(let v)?: return v
        default: throw UnsupportedFeature("attribute \(name) must be a string")
        }
    }

    /// Fails when the node has any attribute outside `known`, naming it.
    func onlyAttributes(_ known: Set<String>) throws(UnsupportedFeature) {
        let unknown = attributes.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else { throw UnsupportedFeature("attribute \(unknown.joined(separator: ", ")) not supported") }
    }

    /// The input at `index`, or nil when absent or given as "".
    func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }

    private func checkedInt(_ v: Int64, _ name: String) throws(UnsupportedFeature) -> Int {
        guard let i = Int(exactly: v), abs(i) < (1 << 40) else { throw UnsupportedFeature("attribute \(name) = \(v) is out of range") }
        return i
    }
}
