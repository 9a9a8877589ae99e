// Pan & Scan (Gemma 3 tech report, inference-time crops of non-square images) with transformers 5.23's exact
// arithmetic (Gemma3ImageProcessor.pan_and_scan, the same in both backends), and the prompt text
// Gemma3Processor writes for an image with its crops (processing_gemma3.py: full_image_sequence, replace_image_token,
// and ProcessorMixin's left-to-right replacement of each `<start_of_image>` by the next image's text).
import Foundation

/// A crop of the original image: its top-left corner and size, clipped to the image (NumPy slicing clips the last
/// crop when the crop size was rounded up, e.g. 1000 px in 3 crops of 334 gives a last crop 332 wide).
public struct CropBox: Sendable, Equatable, CustomStringConvertible {
    public var x, y, width, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
    public var description: String { "[\(x),\(y),\(width),\(height)]" }
}

public enum PanAndScan {
    /// The crops of a `width` x `height` image, in row-major order, or none when the image is not elongated enough
    /// or the crops would be smaller than `minCropSize`. Python's float arithmetic, line for line:
    /// landscape (w >= h): active if w / h >= minRatio; n = floor(w / h + 0.5), n = min(floor(w / minCrop), n),
    /// n = min(maxCrops, max(2, n)); crop = ceil(w / n) x h; portrait mirrors it; none if min(crop) < minCrop.
    public static func cropBoxes(width: Int, height: Int, minCropSize: Int = 256, maxNumCrops: Int = 4,
                                 minRatioToActivate: Double = 1.2) -> [CropBox]
    {
        guard width > 0, height > 0, minCropSize > 0, maxNumCrops > 0 else { return [] }
        let w = Double(width), h = Double(height), minCrop = Double(minCropSize)
        var cropsW = 1, cropsH = 1
        if width >= height {
            if w / h < minRatioToActivate { return [] }
            var n = Int((w / h + 0.5).rounded(.down))  // "half round up"
            n = min(Int((w / minCrop).rounded(.down)), n)
            cropsW = min(maxNumCrops, max(2, n))
        } else {
            if h / w < minRatioToActivate { return [] }
            var n = Int((h / w + 0.5).rounded(.down))
            n = min(Int((h / minCrop).rounded(.down)), n)
            cropsH = min(maxNumCrops, max(2, n))
        }
        let cropW = Int((w / Double(cropsW)).rounded(.up)), cropH = Int((h / Double(cropsH)).rounded(.up))
        if min(cropW, cropH) < minCropSize { return [] }
        var boxes: [CropBox] = []
        for i in 0..<cropsH {
            for j in 0..<cropsW {
                // itertools.product(positions_h, positions_w): row-major; the slice clips at the image edge.
                let x = cropW * j, y = cropH * i
                boxes.append(CropBox(x: x, y: y, width: min(cropW, width - x), height: min(cropH, height - y)))
            }
        }
        return boxes
    }
}

/// The image tokens of Gemma 3's tokenizer, as Gemma3Processor spells them in text.
public enum ImageTokenText {
    public static let startOfImage = "<start_of_image>"
    public static let endOfImage = "<end_of_image>"
    public static let imageSoftToken = "<image_soft_token>"

    /// Gemma3Processor.full_image_sequence: "\n\n<start_of_image>" + N x "<image_soft_token>" + "<end_of_image>\n\n".
    public static func fullImageSequence(tokensPerImage: Int) -> String {
        "\n\n" + startOfImage + String(repeating: imageSoftToken, count: max(tokensPerImage, 0)) + endOfImage + "\n\n"
    }

    /// The text that replaces one image's `<start_of_image>` (Gemma3Processor.replace_image_token): the full image
    /// sequence, or with Pan & Scan crops "Here is the original image S and here are some crops to help you see
    /// better S S ..." (the crops' sequences joined by spaces).
    public static func replacement(numCrops: Int, tokensPerImage: Int) -> String {
        let s = fullImageSequence(tokensPerImage: tokensPerImage)
        guard numCrops > 0 else { return s }
        return "Here is the original image " + s + " and here are some crops to help you see better "
            + Array(repeating: s, count: numCrops).joined(separator: " ")
    }

    /// Soft tokens one image occupies: (crops + 1) x tokens per image.
    public static func softTokenCount(numCrops: Int, tokensPerImage: Int) -> Int {
        (max(numCrops, 0) + 1) * tokensPerImage
    }

    /// `text` with its i-th `<start_of_image>` replaced by image i's text, left to right, as the processor expands a
    /// prompt. - Throws: when the text names a different number of images than `numCrops` has entries.
    public static func expandPrompt(_ text: String, numCrops: [Int], tokensPerImage: Int) throws(ImageError) -> String {
        let parts = text.components(separatedBy: startOfImage)
        guard parts.count - 1 == numCrops.count else {
            throw .imageCountMismatch(placeholders: parts.count - 1, images: numCrops.count)
        }
        var out = parts[0]
        for (i, crops) in numCrops.enumerated() {
            out += replacement(numCrops: crops, tokensPerImage: tokensPerImage) + parts[i + 1]
        }
        return out
    }
}
