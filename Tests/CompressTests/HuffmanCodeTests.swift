import Foundation
import Testing
@testable import Compress

@Suite struct HuffmanCodeTests {
    /// On a dyadic distribution (every probability a power of 1/2) the
    /// optimal code length of each symbol is -log2 p, so the coded size is
    /// exactly n times the entropy.
    @Test func codeLengthEqualsEntropyOnDyadicDistributions() {
        let frequencies = [64, 32, 16, 8, 4, 2, 1, 1]
        let code = HuffmanCode(frequencies: frequencies)
        let total = frequencies.reduce(0, +)
        let entropyBits = frequencies.reduce(0.0) { bits, f in
            let p = Double(f) / Double(total)
            return bits - Double(f) * log2(p)
        }
        var symbols: [Int] = []
        for (s, f) in frequencies.enumerated() { symbols += [Int](repeating: s, count: f) }
        #expect(Double(code.bitCount(symbols)) == entropyBits)
        #expect(code.lengths == [1, 2, 3, 4, 5, 6, 7, 7])
    }

    @Test func roundTripsRandomStreams() throws {
        var rng = SeededGenerator(seed: 9)
        for alphabet in [1, 2, 3, 17, 256] {
            let symbols = (0..<5000).map { _ in
                let u = rng.nextUniform()
                return min(alphabet - 1, Int(Float(alphabet) * u * u))  // skewed towards 0
            }
            var frequencies = [Int](repeating: 0, count: alphabet)
            for s in symbols { frequencies[s] += 1 }
            let code = HuffmanCode(frequencies: frequencies)
            let bytes = code.encode(symbols)
            #expect(bytes.count == (code.bitCount(symbols) + 7) / 8)
            #expect(try code.decode(bytes, count: symbols.count) == symbols, "alphabet \(alphabet)")
            // The lengths alone rebuild the same code, as a reader does.
            #expect(try HuffmanCode(lengths: code.lengths) == code)
        }
    }

    /// Canonical codes: the same lengths in any symbol order mean the same code,
    /// and ties between equal counts are broken by symbol, so the code is deterministic.
    @Test func isCanonicalAndDeterministic() throws {
        let code = HuffmanCode(frequencies: [5, 5, 5, 5])
        #expect(code.lengths == [2, 2, 2, 2])
        // Codes 00, 01, 10, 11 in symbol order: symbols 3, 0 are 11 00 = 0xC0.
        #expect(code.encode([3, 0]) == [0xC0])
        #expect(HuffmanCode(frequencies: [3, 0, 1, 7]) == HuffmanCode(frequencies: [3, 0, 1, 7]))
        #expect(HuffmanCode(frequencies: [3, 0, 1, 7]).lengths[1] == 0)
    }

    /// Fibonacci counts make the optimal code deeper than the limit; the
    /// limited code is still complete and decodes.
    @Test func limitsCodeLength() throws {
        var fib = [1, 1]
        while fib.count < 40 { fib.append(fib[fib.count - 1] + fib[fib.count - 2]) }
        let code = HuffmanCode(frequencies: fib)
        #expect(Int(code.lengths.max()!) == HuffmanCode.maxLength)
        #expect(try HuffmanCode(lengths: code.lengths) == code)
        let symbols = Array(0..<40) + [39, 38, 0]
        #expect(try code.decode(code.encode(symbols), count: symbols.count) == symbols)
    }

    @Test func refusesBadTablesAndStreams() {
        #expect(throws: HuffmanError.self) { try HuffmanCode(lengths: [1, 2]) }  // incomplete
        #expect(throws: HuffmanError.self) { try HuffmanCode(lengths: [1, 1, 1]) }  // oversubscribed
        #expect(throws: HuffmanError.self) { try HuffmanCode(lengths: [2]) }
        #expect(throws: HuffmanError.self) { try HuffmanCode(lengths: [25, 1]) }
        let code = HuffmanCode(frequencies: [1, 1, 2])
        let bytes = code.encode([2, 2, 2, 0])
        #expect(throws: HuffmanError.truncated(decoded: 7, expected: 9)) { try code.decode(bytes, count: 9) }
        let single = HuffmanCode(frequencies: [0, 4])
        #expect(single.lengths == [0, 1])
        #expect(throws: HuffmanError.self) { try single.decode([0xFF], count: 1) }
        #expect((try? single.decode([0x00], count: 3)) == [1, 1, 1])
    }
}
