// Gemma3ImageProcessor (transformers 5.23, the PIL backend's arithmetic: image_processing_pil_gemma3.py) from a
// decoded RGB image to pixel tensors: optional Pan & Scan crops of the original, each of [original, crops...]
// resized with PIL's filter to `size` (aspect ratio not kept) as uint8, then rescaled and normalized into CHW float32.
// The torchvision backend (HF's default when torchvision is installed) resizes with its own antialiased uint8 kernel,
// within 1 of PIL's, and fuses rescale and normalize; tests/fixtures report both.

/// One image's pixel values: float32, channels first (`values[(c * height + y) * width + x]`), as `pixel_values[i]`.
public struct PixelTensor: Sendable, Equatable {
    public static let channels = 3
    public let height: Int
    public let width: Int
    public let values: [Float]
}

/// What the processor makes of one image: the original's pixels first, then each crop's.
public struct ProcessedImage: Sendable, Equatable {
    public let pixelValues: [PixelTensor]
    /// The crops Pan & Scan made (0 without Pan & Scan or for an image not elongated enough): `num_crops`.
    public var numCrops: Int { pixelValues.count - 1 }
    /// Where each crop came from in the original image.
    public let cropBoxes: [CropBox]
}

/// Gemma 3's image processor, configured as a checkpoint's preprocessor_config.json says.
public struct ImageProcessor: Sendable {
    public let config: ImageProcessorConfig

    public init(config: ImageProcessorConfig = ImageProcessorConfig()) {
        self.config = config
    }

    /// The processor of a Hugging Face model folder (preprocessor_config.json, processor_config.json).
    public init(folder: String) throws(ImageError) {
        self.config = try ImageProcessorConfig.load(folder: folder)
    }

    /// The Pan & Scan crops of `image` with this configuration's parameters.
    public func cropBoxes(for image: RGBImage) -> [CropBox] {
        PanAndScan.cropBoxes(width: image.width, height: image.height, minCropSize: config.panAndScanMinCropSize,
                             maxNumCrops: config.panAndScanMaxNumCrops,
                             minRatioToActivate: config.panAndScanMinRatioToActivate)
    }

    /// The images before rescaling: [original, crops...] (crops only with Pan & Scan), each resized to `size` with
    /// `resample` (unless do_resize is off). These are uint8, as both transformers backends produce them.
    /// - Parameter panAndScan: overrides the configuration's do_pan_and_scan.
    public func resizedImages(_ image: RGBImage, panAndScan: Bool? = nil) -> (images: [RGBImage], crops: [CropBox]) {
        let boxes = (panAndScan ?? config.doPanAndScan) ? cropBoxes(for: image) : []
        var images = [image]
        for box in boxes { images.append(image.cropped(x: box.x, y: box.y, width: box.width, height: box.height)) }
        if config.doResize {
            images = images.map { $0.resized(width: config.size.width, height: config.size.height, filter: config.resample) }
        }
        return (images, boxes)
    }

    /// Pixel values for `image` (and its crops with Pan & Scan).
    /// - Parameters:
    ///   - image: a decoded RGB image.
    ///   - panAndScan: overrides the configuration's do_pan_and_scan (off in the released configs, as in HF).
    /// - Returns: the original's tensor first, then one per crop in row-major order.
    public func process(_ image: RGBImage, panAndScan: Bool? = nil) -> ProcessedImage {
        let (images, boxes) = resizedImages(image, panAndScan: panAndScan)
        return ProcessedImage(pixelValues: images.map(pixelTensor), cropBoxes: boxes)
    }

    /// Rescale and normalize a (resized) image into CHW float32, with the PIL backend's exact arithmetic:
    /// `rescale` multiplies in float64 and rounds to float32 (`image.astype(np.float64) * scale`, then float32), and
    /// `normalize` computes `(x - mean) / std` in float32 with mean and std rounded to float32.
    public func pixelTensor(_ image: RGBImage) -> PixelTensor {
        let h = image.height, w = image.width, plane = h * w
        var values = [Float](repeating: 0, count: 3 * plane)
        // 256 possible inputs per channel: a table per channel gives the same floats as the formula.
        var table = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            let mean = Float(config.imageMean[c]), std = Float(config.imageStd[c])
            for v in 0..<256 {
                var x = config.doRescale ? Float(Double(v) * config.rescaleFactor) : Float(v)
                if config.doNormalize { x = (x - mean) / std }
                table[c * 256 + v] = x
            }
        }
        image.pixels.withUnsafeBufferPointer { src in
            values.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    dst[i] = table[Int(src[3 * i])]
                    dst[plane + i] = table[256 + Int(src[3 * i + 1])]
                    dst[2 * plane + i] = table[512 + Int(src[3 * i + 2])]
                }
            }
        }
        return PixelTensor(height: h, width: w, values: values)
    }

    /// The prompt text that stands for one image with `numCrops` crops (see ImageTokenText.replacement).
    public func promptText(numCrops: Int) -> String {
        ImageTokenText.replacement(numCrops: numCrops, tokensPerImage: config.imageSeqLength)
    }

    /// Soft tokens one image with `numCrops` crops takes: (numCrops + 1) x image_seq_length.
    public func softTokenCount(numCrops: Int) -> Int {
        ImageTokenText.softTokenCount(numCrops: numCrops, tokensPerImage: config.imageSeqLength)
    }
}
