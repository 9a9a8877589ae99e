// libjpeg-turbo behind a longjmp error handler: see include/CImageCodecs.h.
#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int status;     // what the jump reports
    int truncated;  // the source ran dry (libjpeg then inserts an EOI and warns JWRN_JPEG_EOF)
    int warnings;
    int unsupported;
    char message[JMSG_LENGTH_MAX];
} error_state;

typedef struct {
    struct jpeg_progress_mgr pub;
    error_state *errors;
    int max_scans;
} progress_state;

static void on_error(j_common_ptr cinfo) {
    error_state *e = (error_state *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    int code = cinfo->err->msg_code;
    if (e->truncated) {
        e->status = GEMMA_IMAGE_TRUNCATED;
    } else if (code == JERR_NO_BACKING_STORE || code == JERR_OUT_OF_MEMORY) {
        e->status = GEMMA_IMAGE_LIMIT;
    } else {
        e->status = GEMMA_IMAGE_ERROR;
        e->unsupported = code == JERR_BAD_PRECISION || code == JERR_CCIR601_NOTIMPL || code == JERR_NOT_COMPILED;
    }
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    error_state *e = (error_state *)cinfo->err;
    if (level < 0) {
        e->warnings += 1;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
    }
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

// libjpeg-turbo's TurboJPEG API limits progressive scans the same way (a file of thousands of tiny scans costs
// quadratic time while being valid).
static void on_progress(j_common_ptr cinfo) {
    progress_state *p = (progress_state *)cinfo->progress;
    if (!cinfo->is_decompressor) return;
    int scan = ((j_decompress_ptr)cinfo)->input_scan_number;
    if (p->max_scans > 0 && scan > p->max_scans) {
        snprintf(p->errors->message, sizeof p->errors->message, "progressive JPEG has more than %d scans", p->max_scans);
        p->errors->status = GEMMA_IMAGE_LIMIT;
        longjmp(p->errors->jump, 1);
    }
}

static void copy_message(gemma_jpeg_info *info, const char *message) {
    snprintf(info->message, sizeof info->message, "%s", message);
}

static void fill_header(gemma_jpeg_info *info, const struct jpeg_decompress_struct *cinfo) {
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->num_components = cinfo->num_components;
    info->color_space = (int)cinfo->jpeg_color_space;
    info->precision = cinfo->data_precision;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
    info->saw_adobe_marker = cinfo->saw_Adobe_marker ? 1 : 0;
}

int gemma_jpeg_read_header(const uint8_t *data, size_t size, gemma_jpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    error_state errors;
    memset(&errors, 0, sizeof errors);
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = on_error;
    errors.pub.emit_message = on_message;
    errors.pub.output_message = on_output;
    if (setjmp(errors.jump)) {
        copy_message(info, errors.message);
        info->warnings = errors.warnings;
        info->unsupported = errors.unsupported;
        jpeg_destroy_decompress(&cinfo);
        return errors.status;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    fill_header(info, &cinfo);
    info->warnings = errors.warnings;
    int status = errors.truncated ? GEMMA_IMAGE_TRUNCATED : GEMMA_IMAGE_OK;
    if (status == GEMMA_IMAGE_TRUNCATED) copy_message(info, "Premature end of JPEG file");
    jpeg_destroy_decompress(&cinfo);
    return status;
}

int gemma_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, size_t max_memory,
                      int max_scans, gemma_jpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    error_state errors;
    progress_state progress;
    memset(&errors, 0, sizeof errors);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = on_error;
    errors.pub.emit_message = on_message;
    errors.pub.output_message = on_output;
    if (setjmp(errors.jump)) {
        copy_message(info, errors.message);
        info->warnings = errors.warnings;
        info->unsupported = errors.unsupported;
        jpeg_destroy_decompress(&cinfo);
        return errors.status;
    }
    jpeg_create_decompress(&cinfo);
    if (max_memory > 0) cinfo.mem->max_memory_to_use = (long)max_memory;
    progress.pub.progress_monitor = on_progress;
    progress.errors = &errors;
    progress.max_scans = max_scans;
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    fill_header(info, &cinfo);
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break;
    default:
        snprintf(info->message, sizeof info->message, "JPEG with %d components", cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return GEMMA_IMAGE_ERROR;
    }
    jpeg_start_decompress(&cinfo);
    info->output_components = cinfo.output_components;
    size_t row = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    if (cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height ||
        row == 0 || capacity / row != cinfo.output_height || capacity % row != 0) {
        copy_message(info, "pixel buffer does not match the decoded layout");
        jpeg_destroy_decompress(&cinfo);
        return GEMMA_IMAGE_BAD_BUFFER;
    }
    // Once the data has run out, libjpeg would go on emitting grey rows to the bottom of the image (a header that
    // claims a large image over a few bytes would cost the whole image's time): stop there.
    while (cinfo.output_scanline < cinfo.output_height && !errors.truncated) {
        JSAMPROW rows[1] = {pixels + (size_t)cinfo.output_scanline * row};
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
    }
    info->warnings = errors.warnings;
    int status = GEMMA_IMAGE_OK;
    if (errors.truncated) {
        status = GEMMA_IMAGE_TRUNCATED;
        copy_message(info, "Premature end of JPEG file");
    } else if (cinfo.output_scanline < cinfo.output_height) {
        status = GEMMA_IMAGE_ERROR;
        copy_message(info, "libjpeg returned fewer scanlines than the image has");
    }
    // jpeg_finish_decompress is not called: it would read on to the EOI marker, which a file may lack after a
    // complete image (Pillow does not require it either).
    jpeg_destroy_decompress(&cinfo);
    return status;
}
