// The setjmp/longjmp error paths of libjpeg-turbo and libpng, kept in C: both libraries report a fatal error by
// calling a handler that must not return, and their default handlers print and exit(). These functions install
// handlers that longjmp back here and turn every failure into a status code and a message, so that no input can
// end the process. Swift (Sources/GemmaVision/Image) checks the dimensions from the header calls before it
// allocates the pixel buffer it hands to the decode calls. No pixel is computed here: the libraries decode.
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

/// Status of every call.
enum {
    GEMMA_IMAGE_OK = 0,
    GEMMA_IMAGE_ERROR = 1,       ///< the library refused the data; `message` says why
    GEMMA_IMAGE_TRUNCATED = 2,   ///< the data ended before the image did
    GEMMA_IMAGE_LIMIT = 3,       ///< a resource limit was hit (scan count, decoder memory); `message` says which
    GEMMA_IMAGE_BAD_BUFFER = 4,  ///< the caller's buffer does not match the decoded layout (a bug, not bad data)
};

/// What libjpeg reports about a JPEG file.
typedef struct {
    uint32_t width, height;
    int num_components;  ///< components in the file (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK)
    int color_space;     ///< J_COLOR_SPACE libjpeg inferred for the file (JFIF/Adobe markers)
    int precision;       ///< sample precision in bits (libjpeg-turbo 2.1 decodes 8 with this build)
    int progressive;
    int saw_adobe_marker;
    int output_components;  ///< components of the decoded pixels (set by decode)
    int warnings;           ///< libjpeg warnings: corrupt data it decoded through, as Pillow does
    int unsupported;        ///< the error is a valid file of a kind libjpeg-turbo does not decode (e.g. 12-bit)
    char message[200];
} gemma_jpeg_info;

/// Reads the JPEG header (markers up to the first scan). Allocates nothing beyond libjpeg's own small state.
int gemma_jpeg_read_header(const uint8_t *data, size_t size, gemma_jpeg_info *info);

/// Decodes the image into `pixels` (`capacity` bytes, exactly width * height * output components): grey for
/// one-component files, RGB for three (libjpeg's YCbCr conversion, ISLOW IDCT, fancy upsampling: libjpeg's
/// defaults, which Pillow keeps), CMYK for four (YCCK converted to CMYK by libjpeg; values as stored).
/// `max_memory` bounds libjpeg's working memory (0 = unbounded); `max_scans` bounds progressive scans.
int gemma_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, size_t max_memory,
                      int max_scans, gemma_jpeg_info *info);

/// What libpng reports about a PNG file, and the layout decode writes.
typedef struct {
    uint32_t width, height;
    int bit_depth, color_type, interlace;
    int channels;          ///< samples per decoded pixel: 1 (grey or palette index), 2 (grey+alpha), 3, 4
    int bytes_per_sample;  ///< 1, or 2 for 16-bit grey (kept whole, big-endian, for Pillow's clipping)
    int num_palette;
    uint8_t palette[768];
    int num_trans;          ///< tRNS alpha entries of a palette image
    uint8_t trans_alpha[256];
    int has_trans_color;    ///< tRNS colour key of a grey or RGB image (raw file values)
    uint16_t trans_gray, trans_red, trans_green, trans_blue;
    int warnings;
    /// Metadata copied out by decode (malloc'd; release with gemma_png_free_metadata): the eXIf chunk, and the
    /// "Raw profile type exif" and "XML:com.adobe.xmp" text chunks, wherever they sit in the file.
    uint8_t *exif;
    size_t exif_size;
    char *raw_profile_exif;
    size_t raw_profile_exif_size;
    char *xmp;
    size_t xmp_size;
    char message[200];
} gemma_png_info;

/// Reads the PNG signature and chunks up to the image data; fills the fields above except the metadata.
int gemma_png_read_header(const uint8_t *data, size_t size, gemma_png_info *info);

/// Decodes into `pixels` (`capacity` bytes, exactly height * width * channels * bytes_per_sample): palette images
/// as one index per pixel, grey of 1, 2 or 4 bits scaled to 8 (libpng's bit replication), 16-bit samples reduced to
/// their high byte except 16-bit grey; interlaced images de-interlaced. Then reads the chunks after the image data
/// for metadata (a failure there is ignored: the pixels are complete).
int gemma_png_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, gemma_png_info *info);

/// Frees the metadata copies decode made (safe to call twice).
void gemma_png_free_metadata(gemma_png_info *info);

#endif
