#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few functions of XGBoost's C API (`xgboost/c_api.h`) the benchmark calls, looked up with `dlsym` in a
/// libxgboost shared library (the one inside the xgboost-cpu wheel: `xgboost/lib/libxgboost.so`).
///
/// Handles (`BoosterHandle`, `DMatrixHandle`) are `void *`; `bst_ulong` is `uint64_t`; every function but
/// `XGBGetLastError` returns 0 on success and -1 on failure.
struct XGBoostLibrary {
    typealias Handle = UnsafeMutableRawPointer

    /// `int XGBoosterCreate(const DMatrixHandle dmats[], bst_ulong len, BoosterHandle *out)`
    let boosterCreate: @convention(c) (UnsafePointer<Handle?>?, UInt64, UnsafeMutablePointer<Handle?>) -> Int32
    /// `int XGBoosterFree(BoosterHandle handle)`
    let boosterFree: @convention(c) (Handle) -> Int32
    /// `int XGBoosterSetParam(BoosterHandle handle, const char *name, const char *value)`
    let boosterSetParam: @convention(c) (Handle, UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32
    /// `int XGBoosterLoadModel(BoosterHandle handle, const char *fname)`
    let boosterLoadModel: @convention(c) (Handle, UnsafePointer<CChar>) -> Int32
    /// `int XGBoosterGetNumFeature(BoosterHandle handle, bst_ulong *out)`
    let boosterGetNumFeature: @convention(c) (Handle, UnsafeMutablePointer<UInt64>) -> Int32
    /// `int XGBoosterBoostedRounds(BoosterHandle handle, int *out)`
    let boosterBoostedRounds: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    /// `int XGBoosterPredictFromDense(BoosterHandle handle, char const *values, char const *config,
    /// DMatrixHandle m, bst_ulong const **out_shape, bst_ulong *out_dim, const float **out_result)`
    let boosterPredictFromDense:
        @convention(c) (
            Handle,
            UnsafePointer<CChar>,
            UnsafePointer<CChar>,
            Handle?,
            UnsafeMutablePointer<UnsafePointer<UInt64>?>,
            UnsafeMutablePointer<UInt64>,
            UnsafeMutablePointer<UnsafePointer<Float>?>
        ) -> Int32
    /// `int XGProxyDMatrixCreate(DMatrixHandle *out)`
    let proxyDMatrixCreate: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
    /// `int XGDMatrixFree(DMatrixHandle handle)`
    let dmatrixFree: @convention(c) (Handle) -> Int32
    /// `const char *XGBGetLastError(void)`
    let getLastError: @convention(c) () -> UnsafePointer<CChar>?
    /// `void XGBoostVersion(int *major, int *minor, int *patch)`
    let version:
        @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>)
            -> Void

    /// Opens the shared library at `path` and looks up every function, failing with `dlerror`'s message.
    init(path: String) throws(BenchError) {
        guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw BenchError("Cannot load \(path): \(String(cString: dlerror()))")
        }
        func symbol<Function>(_ name: String, as type: Function.Type) throws(BenchError) -> Function {
            guard let address = dlsym(library, name) else {
                throw BenchError("\(path) has no \(name): \(String(cString: dlerror()))")
            }
            return unsafeBitCast(address, to: type)
        }
        boosterCreate = try symbol("XGBoosterCreate", as: type(of: boosterCreate))
        boosterFree = try symbol("XGBoosterFree", as: type(of: boosterFree))
        boosterSetParam = try symbol("XGBoosterSetParam", as: type(of: boosterSetParam))
        boosterLoadModel = try symbol("XGBoosterLoadModel", as: type(of: boosterLoadModel))
        boosterGetNumFeature = try symbol("XGBoosterGetNumFeature", as: type(of: boosterGetNumFeature))
        boosterBoostedRounds = try symbol("XGBoosterBoostedRounds", as: type(of: boosterBoostedRounds))
        boosterPredictFromDense = try symbol("XGBoosterPredictFromDense", as: type(of: boosterPredictFromDense))
        proxyDMatrixCreate = try symbol("XGProxyDMatrixCreate", as: type(of: proxyDMatrixCreate))
        dmatrixFree = try symbol("XGDMatrixFree", as: type(of: dmatrixFree))
        getLastError = try symbol("XGBGetLastError", as: type(of: getLastError))
        version = try symbol("XGBoostVersion", as: type(of: version))
    }

    /// XGBoost's version, e.g. `3.2.0`.
    var versionString: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Throws XGBoost's last error message when `status` says a call failed.
    func check(_ status: Int32, _ call: String) throws(BenchError) {
        guard status != 0 else { return }
        let message = getLastError().map { String(cString: $0) } ?? "no message"
        throw BenchError("\(call) failed: \(message)")
    }
}

/// A booster loaded through the C API, predicting on one thread.
final class CAPIBooster {
    let library: XGBoostLibrary
    let handle: XGBoostLibrary.Handle
    /// A proxy DMatrix made once, for predictions that pass one instead of NULL.
    let proxy: XGBoostLibrary.Handle
    /// The number of features the model expects.
    let featureCount: Int
    /// The number of boosting rounds (trees per output group).
    let boostedRounds: Int

    /// The prediction configuration: plain (transformed) predictions of every tree, NaN meaning missing.
    static let configuration = Array(
        #"{"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false, "cache_id": 0, "missing": NaN}"#
            .utf8CString
    )

    /// Creates a booster, limits it to one thread, loads the model file at `path` and makes a proxy DMatrix.
    init(library: XGBoostLibrary, modelPath: String) throws(BenchError) {
        self.library = library
        var createdProxy: XGBoostLibrary.Handle?
        try library.check(library.proxyDMatrixCreate(&createdProxy), "XGProxyDMatrixCreate")
        guard let proxy = createdProxy else { throw BenchError("XGProxyDMatrixCreate returned no DMatrix.") }
        var created: XGBoostLibrary.Handle?
        let status = library.boosterCreate(nil, 0, &created)
        guard status == 0, let handle = created else {
            _ = library.dmatrixFree(proxy)
            try library.check(status, "XGBoosterCreate")
            throw BenchError("XGBoosterCreate returned no booster.")
        }
        var features: UInt64 = 0
        var rounds: Int32 = 0
        do throws(BenchError) {
            try library.check(library.boosterSetParam(handle, "nthread", "1"), "XGBoosterSetParam(nthread)")
            try library.check(library.boosterLoadModel(handle, modelPath), "XGBoosterLoadModel(\(modelPath))")
            try library.check(library.boosterGetNumFeature(handle, &features), "XGBoosterGetNumFeature")
            try library.check(library.boosterBoostedRounds(handle, &rounds), "XGBoosterBoostedRounds")
        } catch {
            _ = library.boosterFree(handle)
            _ = library.dmatrixFree(proxy)
            throw error
        }
        self.handle = handle
        self.proxy = proxy
        featureCount = Int(features)
        boostedRounds = Int(rounds)
    }

    deinit {
        _ = library.boosterFree(handle)
        _ = library.dmatrixFree(proxy)
    }

    /// Predicts the rows `arrayInterface` describes (a NUL-terminated `__array_interface__` JSON, see
    /// ``arrayInterface(rows:rowCount:featureCount:)``). The result is owned by the booster and valid until its next
    /// prediction. Throws XGBoost's error message on failure.
    ///
    /// With `reusingProxy` false the DMatrix argument is NULL, as in XGBoost's Python `inplace_predict`, and
    /// XGBoost makes a proxy DMatrix per call; with true the call passes ``proxy``, made once.
    @inline(__always)
    func predict(
        arrayInterface: UnsafePointer<CChar>,
        reusingProxy: Bool
    ) throws(BenchError) -> UnsafeBufferPointer<Float> {
        var shape: UnsafePointer<UInt64>?
        var dimensions: UInt64 = 0
        var result: UnsafePointer<Float>?
        let status = Self.configuration.withUnsafeBufferPointer { configuration in
            library.boosterPredictFromDense(
                handle,
                arrayInterface,
                configuration.baseAddress!,
                reusingProxy ? proxy : nil,
                &shape,
                &dimensions,
                &result
            )
        }
        try library.check(status, "XGBoosterPredictFromDense")
        guard let shape, let result else { throw BenchError("XGBoosterPredictFromDense returned no result.") }
        var count = 1
        for dimension in 0..<Int(dimensions) { count *= Int(shape[dimension]) }
        return UnsafeBufferPointer(start: result, count: count)
    }

    /// The NUL-terminated `__array_interface__` (version 3) JSON describing `rowCount` dense row-major `Float` rows
    /// at `rows`. The address is in the text, so build it once per buffer, not once per call.
    static func arrayInterface(rows: UnsafePointer<Float>, rowCount: Int, featureCount: Int) -> [CChar] {
        let address = UInt(bitPattern: rows)
        let text =
            #"{"data": [\#(address), true], "shape": [\#(rowCount), \#(featureCount)], "typestr": "<f4", "version": 3}"#
        return Array(text.utf8CString)
    }
}
