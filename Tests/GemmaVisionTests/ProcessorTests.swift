// The image processor against transformers: its configuration from a model folder, the pixel values of
// Gemma3ImageProcessorPil itself (rescale, per-channel normalize, Pan & Scan crops, bilinear and bicubic), the
// normalize formula's error bound from the tiny-vision fixture, Pan & Scan crop boxes (fixture and the worked examples
// of the vision spec), and the processor's expanded prompt text and soft-token counts.
import Foundation
import GemmaFormats
import GemmaTestSupport
import GemmaVision
import Testing

struct ProcessorTests {
    @Test func readsTheFixtureConfig() throws {
        let c = try ImageProcessorConfig.load(folder: VisionFixtures.tiny)
        #expect(c.size == ImageSize(height: 224, width: 224))
        #expect(c.resample == .bilinear)
        #expect(c.rescaleFactor == 0.00392156862745098 && c.doRescale && c.doNormalize && c.doResize)
        #expect(c.imageMean == [0.5, 0.5, 0.5] && c.imageStd == [0.5, 0.5, 0.5])
        // Pan & Scan keys are null there: Gemma3Processor's defaults.
        #expect(!c.doPanAndScan && c.panAndScanMinCropSize == 256 && c.panAndScanMaxNumCrops == 4
            && c.panAndScanMinRatioToActivate == 1.2)
        #expect(c.imageSeqLength == 16)
    }

    static func config(_ json: String) throws(ImageError) -> ImageProcessorConfig {
        let value: JSONValue
        do { value = try JSONValue.parse(Array(json.utf8)) } catch { throw .config(file: "test", reason: "\(error)") }
        return try ImageProcessorConfig(preprocessor: value)
    }

    @Test func configDefaultsAndRefusals() throws {
        #expect(try Self.config("{}") == ImageProcessorConfig())
        let released = try Self.config(#"{"size": {"height": 896, "width": 896}, "image_mean": 0.5, "resample": 3}"#)
        #expect(released.size.height == 896 && released.imageMean == [0.5, 0.5, 0.5] && released.resample == .bicubic)
        let refusals = [
            #"{"resample": 0}"#, #"{"resample": 6}"#, #"{"size": {"shortest_edge": 224}}"#, #"{"size": {"height": 0, "width": 4}}"#,
            #"{"do_resize": "yes"}"#, #"{"image_mean": [0.5, 0.5]}"#, #"{"image_std": [0, 1, 1]}"#,
            #"{"image_processor_type": "SiglipImageProcessor"}"#, #"{"pan_and_scan_min_crop_size": 0}"#, "[]",
        ]
        for json in refusals {
            do {
                _ = try Self.config(json)
                Issue.record("accepted \(json)")
            } catch {
                guard case .config = error else { Issue.record("\(json): \(error)"); continue }
            }
        }
    }

    /// transformers' Gemma3ImageProcessorPil outputs (scripts/reference/make_vision_image_refs.py).
    @Test func pixelValuesEqualTransformersPILBackend() throws {
        let meta = try VisionFixtures.json(VisionFixtures.images + "/cases.json")
        let runs = try #require(meta["processor_runs"] as? [String: [String: Any]])
        #expect(runs.count == 3)
        for (key, run) in runs.sorted(by: { $0.key < $1.key }) {
            let name = try #require(run["image"] as? String)
            let kwargs = try #require(run["kwargs"] as? [String: Any])
            var config = try ImageProcessorConfig.load(folder: VisionFixtures.tiny)
            let size = try #require(kwargs["size"] as? [String: Int])
            config.size = ImageSize(height: size["height"] ?? 0, width: size["width"] ?? 0)
            if let mean = kwargs["image_mean"] as? [Double] { config.imageMean = mean }
            if let std = kwargs["image_std"] as? [Double] { config.imageStd = std }
            if let r = kwargs["resample"] as? Int { config.resample = try #require(ResampleFilter(rawValue: r)) }
            config.doPanAndScan = kwargs["do_pan_and_scan"] as? Bool ?? false

            let image = try RGBImage(contentsOfFile: VisionFixtures.tiny + "/images/" + name)
            let out = ImageProcessor(config: config).process(image)
            #expect(out.numCrops == run["num_crops"] as? Int, "\(key)")
            let refs = try #require(VisionFixtures.references)
            let info = try #require(refs.tensor(named: "processor.\(key)"))
            #expect(info.dtype == .F32 && info.shape == [out.pixelValues.count, 3, config.size.height, config.size.width])
            let expected = Array(refs.data(for: info).bindMemory(to: Float.self))
            let ours = out.pixelValues.flatMap(\.values)
            guard ours.count == expected.count else { Issue.record("\(key): \(ours.count) values"); continue }
            var maxDiff: Float = 0
            for i in 0..<ours.count { maxDiff = max(maxDiff, abs(ours[i] - expected[i])) }
            // One uint8 step after normalizing: 1 / (255 std).
            let step = Float(1 / (255 * (config.imageStd.min() ?? 1)))
            print("processor \(key): \(out.pixelValues.count) tensors, max |Δ| \(maxDiff) (one uint8 step = \(step))")
            if name.hasSuffix(".png") {
                #expect(maxDiff == 0, "\(key): \(maxDiff)")
            } else {
                #expect(maxDiff <= step * Float(DecodeTests.jpegTolerance) * 1.0001, "\(key): \(maxDiff)")
            }
        }
    }

    @Test func normalizeMatchesTheFixtureFormula() throws {
        let fixtures = try VisionFixtures.json(VisionFixtures.tiny + "/fixtures.json")
        let wide = try #require((fixtures["preprocess"] as? [String: Any])?["wide"] as? [String: Any])
        let bound = try #require(wide["max_abs_err_pixel_values_vs_u8_formula.pil.pas0"] as? Double)
        let processor = ImageProcessor()
        let ramp = RGBImage(width: 256, height: 1, pixels: (0..<256).flatMap { [UInt8($0), UInt8(255 - $0), UInt8($0)] })
        let t = processor.pixelTensor(ramp)
        #expect(t.height == 1 && t.width == 256 && t.values.count == 768)
        var worst = 0.0
        for x in 0..<256 {
            for (c, v) in [(0, x), (1, 255 - x), (2, x)] {
                let formula = (Double(v) / 255 - 0.5) / 0.5
                worst = max(worst, abs(Double(t.values[c * 256 + x]) - formula))
            }
        }
        #expect(worst <= bound, "\(worst) > \(bound)")
        #expect(t.values[0] == -1 && t.values[255] == 1)  // CHW: channel 0 is the ramp
    }

    @Test func panAndScanBoxesMatchTheFixture() throws {
        let fixtures = try VisionFixtures.json(VisionFixtures.tiny + "/fixtures.json")
        let pre = try #require(fixtures["preprocess"] as? [String: Any])
        for name in ["wide", "tall", "square"] {
            let entry = try #require(pre[name] as? [String: Any])
            let boxes = try #require(entry["pan_and_scan_crops_xywh"] as? [[Int]])
            let w = try #require(entry["width"] as? Int), h = try #require(entry["height"] as? Int)
            let ours = PanAndScan.cropBoxes(width: w, height: h)
            #expect(ours.map { [$0.x, $0.y, $0.width, $0.height] } == boxes, "\(name)")
            #expect(ours.count == entry["num_crops.pil.pas1"] as? Int)
        }
    }

    @Test func panAndScanWorkedExamples() {
        // ../shared/reference/vision.md §d (derived from transformers' arithmetic), and the portrait mirror.
        func sizes(_ w: Int, _ h: Int) -> [[Int]] { PanAndScan.cropBoxes(width: w, height: h).map { [$0.width, $0.height] } }
        #expect(sizes(1920, 1080) == [[960, 1080], [960, 1080]])
        #expect(sizes(1000, 800) == [[500, 800], [500, 800]])  // ratio 1.25: max(2, 1) forces 2
        #expect(sizes(4000, 1000) == [[1000, 1000], [1000, 1000], [1000, 1000], [1000, 1000]])
        #expect(sizes(1001, 300) == [[334, 300], [334, 300], [333, 300]])
        #expect(sizes(600, 200).isEmpty)  // crop 300x200 < 256
        #expect(sizes(896, 896).isEmpty)
        #expect(sizes(1080, 1920) == [[1080, 960], [1080, 960]])
        #expect(PanAndScan.cropBoxes(width: 300, height: 1001).map(\.y) == [0, 334, 668])
        #expect(sizes(10000, 1000) == Array(repeating: [2500, 1000], count: 4))  // at most 4
        #expect(sizes(1199, 1000).isEmpty && sizes(1200, 1000).count == 2)  // the 1.2 threshold is inclusive
    }

    @Test func promptTextEqualsTheProcessors() throws {
        let fixtures = try VisionFixtures.json(VisionFixtures.tiny + "/fixtures.json")
        let processorCases = try #require(fixtures["processor"] as? [String: Any])
        let processor = try ImageProcessor(folder: VisionFixtures.tiny)
        for (key, crops) in [("single", 0), ("pas", 3)] {
            let c = try #require(processorCases[key] as? [String: Any])
            let prompt = try #require(c["prompt"] as? String), expanded = try #require(c["expanded_text"] as? String)
            let ours = try ImageTokenText.expandPrompt(prompt, numCrops: [crops], tokensPerImage: processor.config.imageSeqLength)
            #expect("<bos>" + ours == expanded, "\(key)")
            let ids = try #require(c["input_ids"] as? [Int])
            #expect(ids.filter { $0 == 262 }.count == processor.softTokenCount(numCrops: crops), "\(key): soft tokens")
            #expect(ours.contains(processor.promptText(numCrops: crops)))
        }
        #expect(throws: ImageError.imageCountMismatch(placeholders: 1, images: 2)) {
            try ImageTokenText.expandPrompt("a <start_of_image> b", numCrops: [0, 0], tokensPerImage: 4)
        }
        let two = try ImageTokenText.expandPrompt("<start_of_image>|<start_of_image>", numCrops: [0, 1], tokensPerImage: 1)
        let s = "\n\n<start_of_image><image_soft_token><end_of_image>\n\n"
        #expect(two == s + "|Here is the original image " + s + " and here are some crops to help you see better " + s)
        #expect(ImageTokenText.softTokenCount(numCrops: 4, tokensPerImage: 256) == 1280)
    }
}
