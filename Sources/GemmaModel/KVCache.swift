// The KV cache behind a protocol: the model asks where position p's key and value live for a layer. A plain
// full-length cache is here; a cache that keeps only a window ring for local layers can implement the same protocol.

/// Storage for keys and values, `kvDim` floats per position per layer.
public protocol KVCache: AnyObject {
    /// Positions the cache can hold.
    var capacity: Int { get }
    /// Positions stored so far (the next position to write).
    var count: Int { get set }
    /// Where layer `layer`'s key for `position` lives (`kvDim` floats).
    func key(layer: Int, position: Int) -> UnsafeMutablePointer<Float>
    /// Where layer `layer`'s value for `position` lives (`kvDim` floats).
    func value(layer: Int, position: Int) -> UnsafeMutablePointer<Float>
    /// Bytes the cache holds.
    var bytes: Int { get }
}

/// Every position of every layer, f32.
public final class FullKVCache: KVCache {
    public let capacity: Int
    public var count = 0
    let kvDim: Int
    let layers: Int
    private let keys: UnsafeMutablePointer<Float>
    private let values: UnsafeMutablePointer<Float>

    public init(layers: Int, kvDim: Int, capacity: Int) {
        self.layers = layers
        self.kvDim = kvDim
        self.capacity = capacity
        keys = .allocate(capacity: layers * capacity * kvDim)
        values = .allocate(capacity: layers * capacity * kvDim)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    public func key(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys + (layer * capacity + position) * kvDim
    }

    public func value(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        values + (layer * capacity + position) * kvDim
    }

    public var bytes: Int { 2 * layers * capacity * kvDim * MemoryLayout<Float>.size }
}
