// libpng behind a longjmp error handler: see include/CImageCodecs.h.
#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct {
    const uint8_t *data;
    size_t size, offset;
    int truncated;
    int warnings;
    char message[200];
} reader_state;

static void on_read(png_structp png, png_bytep out, size_t length) {
    reader_state *r = (reader_state *)png_get_io_ptr(png);
    if (length > r->size - r->offset) {
        r->truncated = 1;
        png_error(png, "unexpected end of PNG data");
    }
    memcpy(out, r->data + r->offset, length);
    r->offset += length;
}

static void on_error(png_structp png, png_const_charp message) {
    reader_state *r = (reader_state *)png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", message ? message : "libpng error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)message;
    reader_state *r = (reader_state *)png_get_error_ptr(png);
    r->warnings += 1;
}

// Reads the header chunks and chooses the transforms (the same in both calls, so that the header's layout is the
// decode's): palette kept as indices (looked up in Swift, with Pillow's alpha per entry), grey below
// 8 bits scaled to 8, 16-bit samples to their high byte (Pillow's "RGB;16B", "RGBA;16B", "LA;16B" raw modes) except
// 16-bit grey, which Pillow opens as "I;16" and clips when it converts to RGB.
static void read_header(png_structp png, png_infop info, gemma_png_info *out) {
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);  // the caller checks the pixel count
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, NULL, NULL);
    out->width = width;
    out->height = height;
    out->bit_depth = depth;
    out->color_type = color;
    out->interlace = interlace;

    png_colorp palette = NULL;
    int num_palette = 0;
    if (png_get_valid(png, info, PNG_INFO_PLTE) && png_get_PLTE(png, info, &palette, &num_palette) && palette) {
        if (num_palette > 256) num_palette = 256;
        out->num_palette = num_palette;
        for (int i = 0; i < num_palette; i++) {
            out->palette[3 * i + 0] = palette[i].red;
            out->palette[3 * i + 1] = palette[i].green;
            out->palette[3 * i + 2] = palette[i].blue;
        }
    }
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_bytep trans = NULL;
        int num_trans = 0;
        png_color_16p trans_color = NULL;
        png_get_tRNS(png, info, &trans, &num_trans, &trans_color);
        if (color == PNG_COLOR_TYPE_PALETTE && trans) {
            if (num_trans > 256) num_trans = 256;
            out->num_trans = num_trans;
            memcpy(out->trans_alpha, trans, (size_t)num_trans);
        } else if (trans_color) {
            out->has_trans_color = 1;
            out->trans_gray = trans_color->gray;
            out->trans_red = trans_color->red;
            out->trans_green = trans_color->green;
            out->trans_blue = trans_color->blue;
        }
    }

    out->bytes_per_sample = 1;
    switch (color) {
    case PNG_COLOR_TYPE_PALETTE:
        png_set_packing(png);
        out->channels = 1;
        break;
    case PNG_COLOR_TYPE_GRAY:
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (depth == 16) out->bytes_per_sample = 2;
        out->channels = 1;
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: out->channels = 2; break;
    case PNG_COLOR_TYPE_RGB: out->channels = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: out->channels = 4; break;
    default: png_error(png, "unknown PNG colour type");
    }
    if (depth == 16 && out->bytes_per_sample == 1) png_set_strip_16(png);
}

static char *copy_text(const char *text, size_t length, size_t *size) {
    char *copy = malloc(length + 1);
    if (!copy) return NULL;
    memcpy(copy, text, length);
    copy[length] = 0;
    *size = length;
    return copy;
}

// Copies eXIf and the two text chunks Pillow reads orientation from (see the header). Never longjmps.
static void copy_metadata(png_structp png, png_infop info, gemma_png_info *out) {
    png_uint_32 num_exif = 0;
    png_bytep exif = NULL;
    if (!out->exif && png_get_eXIf_1(png, info, &num_exif, &exif) && exif && num_exif > 0) {
        out->exif = malloc(num_exif);
        if (out->exif) {
            memcpy(out->exif, exif, num_exif);
            out->exif_size = num_exif;
        }
    }
    png_textp text = NULL;
    int num_text = 0;
    if (png_get_text(png, info, &text, &num_text) > 0 && text) {
        for (int i = 0; i < num_text; i++) {
            if (!text[i].key || !text[i].text) continue;
            size_t length = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
            if (!out->raw_profile_exif && strcmp(text[i].key, "Raw profile type exif") == 0) {
                out->raw_profile_exif = copy_text(text[i].text, length, &out->raw_profile_exif_size);
            } else if (!out->xmp && strcmp(text[i].key, "XML:com.adobe.xmp") == 0) {
                out->xmp = copy_text(text[i].text, length, &out->xmp_size);
            }
        }
    }
}

void gemma_png_free_metadata(gemma_png_info *info) {
    free(info->exif);
    free(info->raw_profile_exif);
    free(info->xmp);
    info->exif = NULL;
    info->raw_profile_exif = NULL;
    info->xmp = NULL;
    info->exif_size = info->raw_profile_exif_size = info->xmp_size = 0;
}

static int finish(reader_state *r, gemma_png_info *info, int status) {
    info->warnings = r->warnings;
    if (status != GEMMA_IMAGE_OK) snprintf(info->message, sizeof info->message, "%s", r->message);
    return status;
}

int gemma_png_read_header(const uint8_t *data, size_t size, gemma_png_info *info) {
    memset(info, 0, sizeof *info);
    reader_state r = {data, size, 0, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
    if (!png) return finish(&r, info, GEMMA_IMAGE_LIMIT);
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(r.message, sizeof r.message, "libpng could not allocate its state");
        return finish(&r, info, GEMMA_IMAGE_LIMIT);
    }
    png_set_read_fn(png, &r, on_read);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        return finish(&r, info, r.truncated ? GEMMA_IMAGE_TRUNCATED : GEMMA_IMAGE_ERROR);
    }
    read_header(png, pinfo, info);
    png_destroy_read_struct(&png, &pinfo, NULL);
    return finish(&r, info, GEMMA_IMAGE_OK);
}

int gemma_png_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, gemma_png_info *info) {
    memset(info, 0, sizeof *info);
    reader_state r = {data, size, 0, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
    if (!png) return finish(&r, info, GEMMA_IMAGE_LIMIT);
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(r.message, sizeof r.message, "libpng could not allocate its state");
        return finish(&r, info, GEMMA_IMAGE_LIMIT);
    }
    png_set_read_fn(png, &r, on_read);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        gemma_png_free_metadata(info);
        return finish(&r, info, r.truncated ? GEMMA_IMAGE_TRUNCATED : GEMMA_IMAGE_ERROR);
    }
    read_header(png, pinfo, info);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    size_t row = (size_t)info->width * (size_t)info->channels * (size_t)info->bytes_per_sample;
    if (png_get_rowbytes(png, pinfo) != row || row == 0 || capacity / row != info->height || capacity % row != 0) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        snprintf(r.message, sizeof r.message, "pixel buffer does not match the decoded layout");
        return finish(&r, info, GEMMA_IMAGE_BAD_BUFFER);
    }
    for (int pass = 0; pass < passes; pass++) {
        for (png_uint_32 y = 0; y < info->height; y++) png_read_row(png, pixels + (size_t)y * row, NULL);
    }
    copy_metadata(png, pinfo, info);
    // The chunks after the image data (metadata, IEND): their errors do not undo a complete image.
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &pinfo, NULL);
        info->warnings = r.warnings + 1;
        return GEMMA_IMAGE_OK;
    }
    png_read_end(png, pinfo);
    copy_metadata(png, pinfo, info);
    png_destroy_read_struct(&png, &pinfo, NULL);
    return finish(&r, info, GEMMA_IMAGE_OK);
}
