// JPEG decode/encode on libjpeg(-turbo), errors caught with setjmp in this file only.
#include "CImageShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

// State that must survive a longjmp lives behind a pointer, never in modified locals.
struct jpeg_state {
    struct jpeg_error_mgr errors; // first member: libjpeg hands back a pointer to it
    jmp_buf jump;
    struct jpeg_decompress_struct decompress;
    struct jpeg_compress_struct compress;
    unsigned char *pixels;
    unsigned char *out;
    unsigned long out_size;
    loupe_image_result *result;
};

static void set_message(loupe_image_result *result, int status, const char *message) {
    result->status = status;
    snprintf(result->message, LOUPE_IMAGE_MESSAGE_LENGTH, "%s", message);
}

static void jpeg_error_exit_handler(j_common_ptr cinfo) {
    struct jpeg_state *s = (struct jpeg_state *)cinfo->err;
    if (s->result->status == LOUPE_IMAGE_OK) {
        char buffer[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, buffer);
        set_message(s->result, LOUPE_IMAGE_CORRUPT, buffer);
    }
    longjmp(s->jump, 1);
}

static void jpeg_message_handler(j_common_ptr cinfo, int level) {
    // A file that ends early is only a warning to libjpeg (it pads with gray); PIL calls it an
    // error ("image file is truncated") and so do we. Other warnings (extraneous bytes between
    // markers) are tolerated, as by djpeg and PIL.
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        struct jpeg_state *s = (struct jpeg_state *)cinfo->err;
        set_message(s->result, LOUPE_IMAGE_CORRUPT, "file is truncated (ends before the image data does)");
        longjmp(s->jump, 1);
    }
}

static int jpeg_decode_guarded(struct jpeg_state *s, const unsigned char *bytes, size_t size, size_t max_bytes) {
    if (setjmp(s->jump)) {
        return 1;
    }
    jpeg_create_decompress(&s->decompress);
    jpeg_mem_src(&s->decompress, bytes, (unsigned long)size);
    jpeg_read_header(&s->decompress, TRUE);

    int channels;
    switch (s->decompress.jpeg_color_space) {
    case JCS_GRAYSCALE:
        s->decompress.out_color_space = JCS_GRAYSCALE;
        channels = 1;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        set_message(s->result, LOUPE_IMAGE_UNSUPPORTED,
                    "CMYK/YCCK JPEG is not supported (convert it to RGB, e.g. with `convert in.jpg -colorspace sRGB out.jpg`)");
        return 1;
    default:
        s->decompress.out_color_space = JCS_RGB;
        channels = 3;
        break;
    }
    JDIMENSION width = s->decompress.image_width;
    JDIMENSION height = s->decompress.image_height;
    size_t rowbytes = (size_t)width * (size_t)channels;
    if (width == 0 || height == 0) {
        set_message(s->result, LOUPE_IMAGE_CORRUPT, "image has zero width or height");
        return 1;
    }
    if (rowbytes > max_bytes / height) {
        s->result->status = LOUPE_IMAGE_TOO_LARGE;
        s->result->width = width;
        s->result->height = height;
        snprintf(s->result->message, LOUPE_IMAGE_MESSAGE_LENGTH, "%u x %u pixels exceed the decode limit",
                 (unsigned)width, (unsigned)height);
        return 1;
    }
    // libjpeg's own working memory (progressive coefficient buffers) is bounded the same way.
    s->decompress.mem->max_memory_to_use = (long)(max_bytes < 0x7fffffff ? max_bytes * 4 : 0x7fffffff);
    jpeg_start_decompress(&s->decompress);
    if ((size_t)s->decompress.output_components != (size_t)channels || s->decompress.output_width != width ||
        s->decompress.output_height != height) {
        set_message(s->result, LOUPE_IMAGE_UNSUPPORTED, "unexpected output layout");
        return 1;
    }
    s->pixels = (unsigned char *)malloc(rowbytes * height);
    if (s->pixels == NULL) {
        set_message(s->result, LOUPE_IMAGE_FAILED, "out of memory");
        return 1;
    }
    while (s->decompress.output_scanline < height) {
        JSAMPROW row = s->pixels + (size_t)s->decompress.output_scanline * rowbytes;
        jpeg_read_scanlines(&s->decompress, &row, 1);
    }
    jpeg_finish_decompress(&s->decompress);
    s->result->width = width;
    s->result->height = height;
    s->result->channels = channels;
    s->result->bit_depth = 8;
    s->result->size = rowbytes * height;
    return 0;
}

void loupe_jpeg_decode(const unsigned char *bytes, size_t size, size_t max_bytes, loupe_image_result *result) {
    memset(result, 0, sizeof(*result));
    if (size < 3 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF) {
        set_message(result, LOUPE_IMAGE_CORRUPT, "missing JPEG start-of-image marker");
        return;
    }
    struct jpeg_state *s = (struct jpeg_state *)calloc(1, sizeof(struct jpeg_state));
    if (s == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
        return;
    }
    s->result = result;
    s->decompress.err = jpeg_std_error(&s->errors);
    s->errors.error_exit = jpeg_error_exit_handler;
    s->errors.emit_message = jpeg_message_handler;
    if (jpeg_decode_guarded(s, bytes, size, max_bytes) == 0) {
        result->data = s->pixels;
        s->pixels = NULL;
    } else if (result->status == LOUPE_IMAGE_OK) {
        set_message(result, LOUPE_IMAGE_CORRUPT, "decoding failed");
    }
    // jpeg_destroy is safe on a partly set-up object and does not call error_exit.
    jpeg_destroy_decompress(&s->decompress);
    free(s->pixels);
    free(s);
}

static int jpeg_encode_guarded(struct jpeg_state *s, const unsigned char *pixels, uint32_t width, uint32_t height,
                               int channels, int quality) {
    if (setjmp(s->jump)) {
        return 1;
    }
    jpeg_create_compress(&s->compress);
    jpeg_mem_dest(&s->compress, &s->out, &s->out_size);
    s->compress.image_width = width;
    s->compress.image_height = height;
    s->compress.input_components = channels;
    s->compress.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&s->compress);
    jpeg_set_quality(&s->compress, quality, TRUE);
    jpeg_start_compress(&s->compress, TRUE);
    size_t rowbytes = (size_t)width * (size_t)channels;
    while (s->compress.next_scanline < height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)s->compress.next_scanline * rowbytes);
        jpeg_write_scanlines(&s->compress, &row, 1);
    }
    jpeg_finish_compress(&s->compress);
    return 0;
}

void loupe_jpeg_encode(const unsigned char *pixels, uint32_t width, uint32_t height, int channels, int quality,
                       loupe_image_result *result) {
    memset(result, 0, sizeof(*result));
    if ((channels != 1 && channels != 3) || width == 0 || height == 0 || width > 65500 || height > 65500 ||
        quality < 1 || quality > 100) {
        set_message(result, LOUPE_IMAGE_FAILED,
                    "JPEG needs 1 (gray) or 3 (RGB) channels, 1-65500 pixels a side and quality 1-100");
        return;
    }
    struct jpeg_state *s = (struct jpeg_state *)calloc(1, sizeof(struct jpeg_state));
    if (s == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
        return;
    }
    s->result = result;
    s->compress.err = jpeg_std_error(&s->errors);
    s->errors.error_exit = jpeg_error_exit_handler;
    s->errors.emit_message = jpeg_message_handler;
    if (jpeg_encode_guarded(s, pixels, width, height, channels, quality) == 0) {
        // jpeg_mem_dest's buffer is malloc'd by libjpeg-turbo and released with free().
        result->data = s->out;
        result->size = (size_t)s->out_size;
        result->width = width;
        result->height = height;
        result->channels = channels;
        result->bit_depth = 8;
        s->out = NULL;
    } else if (result->status == LOUPE_IMAGE_CORRUPT) {
        result->status = LOUPE_IMAGE_FAILED;
    }
    jpeg_destroy_compress(&s->compress);
    free(s->out);
    free(s);
}
