// PNG decode/encode on libpng's full API, errors caught with setjmp in this file only.
#include "CImageShims.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Everything that must survive a longjmp lives behind this pointer (never in locals that are
// modified after setjmp, whose values would be indeterminate).
struct png_state {
    jmp_buf jump;
    const unsigned char *bytes;
    size_t size;
    size_t position;
    size_t max_bytes;
    png_structp png;
    png_infop info;
    unsigned char *pixels;
    png_bytep *rows;
    unsigned char *out;
    size_t out_size;
    size_t out_capacity;
    loupe_image_result *result;
};

static void set_message(loupe_image_result *result, int status, const char *message) {
    result->status = status;
    snprintf(result->message, LOUPE_IMAGE_MESSAGE_LENGTH, "%s", message);
}

static void png_error_handler(png_structp png, png_const_charp message) {
    struct png_state *s = (struct png_state *)png_get_error_ptr(png);
    if (s->result->status == LOUPE_IMAGE_OK) {
        set_message(s->result, LOUPE_IMAGE_CORRUPT, message);
    }
    longjmp(s->jump, 1);
}

static void png_warning_handler(png_structp png, png_const_charp message) {
    // Warnings (bad ancillary-chunk CRCs, unknown chunks, ...) do not stop decoding; PIL
    // ignores them too.
    (void)png;
    (void)message;
}

static void png_read_memory(png_structp png, png_bytep out, size_t length) {
    struct png_state *s = (struct png_state *)png_get_io_ptr(png);
    if (length > s->size - s->position) {
        png_error(png, "file is truncated (ends before the image data does)");
    }
    memcpy(out, s->bytes + s->position, length);
    s->position += length;
}

static int png_decode_guarded(struct png_state *s) {
    if (setjmp(s->jump)) {
        return 1;
    }
    png_set_read_fn(s->png, s, png_read_memory);
    // Limit decompressed ancillary chunks (zTXt, iCCP) so a crafted file cannot blow up memory.
    png_set_chunk_malloc_max(s->png, 8u << 20);
    png_read_info(s->png, s->info);

    png_uint_32 width = png_get_image_width(s->png, s->info);
    png_uint_32 height = png_get_image_height(s->png, s->info);
    int color_type = png_get_color_type(s->png, s->info);
    int bit_depth = png_get_bit_depth(s->png, s->info);

    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(s->png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(s->png);
    }
    if (png_get_valid(s->png, s->info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(s->png);
    }
    if (bit_depth == 16) {
        // Stored big-endian; hand native-endian uint16 to Swift.
        unsigned int probe = 1;
        if (*(unsigned char *)&probe == 1) {
            png_set_swap(s->png);
        }
    }
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);

    int channels = png_get_channels(s->png, s->info);
    int out_depth = png_get_bit_depth(s->png, s->info);
    size_t rowbytes = png_get_rowbytes(s->png, s->info);
    size_t bytes_per_sample = out_depth == 16 ? 2 : 1;
    if (channels < 1 || channels > 4 || (out_depth != 8 && out_depth != 16) ||
        rowbytes != (size_t)width * (size_t)channels * bytes_per_sample) {
        set_message(s->result, LOUPE_IMAGE_UNSUPPORTED, "unexpected sample layout after expansion");
        return 1;
    }
    if (height != 0 && rowbytes > s->max_bytes / height) {
        s->result->status = LOUPE_IMAGE_TOO_LARGE;
        s->result->width = width;
        s->result->height = height;
        snprintf(s->result->message, LOUPE_IMAGE_MESSAGE_LENGTH, "%u x %u pixels exceed the decode limit",
                 (unsigned)width, (unsigned)height);
        return 1;
    }
    s->pixels = (unsigned char *)malloc(rowbytes * height);
    s->rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (s->pixels == NULL || s->rows == NULL) {
        set_message(s->result, LOUPE_IMAGE_FAILED, "out of memory");
        return 1;
    }
    for (png_uint_32 y = 0; y < height; y++) {
        s->rows[y] = s->pixels + (size_t)y * rowbytes;
    }
    png_read_image(s->png, s->rows);

    s->result->width = width;
    s->result->height = height;
    s->result->channels = channels;
    s->result->bit_depth = out_depth;
    s->result->size = rowbytes * height;
    return 0;
}

void loupe_png_decode(const unsigned char *bytes, size_t size, size_t max_bytes, loupe_image_result *result) {
    memset(result, 0, sizeof(*result));
    if (size < 8 || png_sig_cmp(bytes, 0, 8) != 0) {
        set_message(result, LOUPE_IMAGE_CORRUPT, "missing PNG signature");
        return;
    }
    struct png_state *s = (struct png_state *)calloc(1, sizeof(struct png_state));
    if (s == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
        return;
    }
    s->bytes = bytes;
    s->size = size;
    s->max_bytes = max_bytes;
    s->result = result;
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_error_handler, png_warning_handler);
    s->info = s->png ? png_create_info_struct(s->png) : NULL;
    if (s->png == NULL || s->info == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
    } else if (png_decode_guarded(s) == 0) {
        result->data = s->pixels;
        s->pixels = NULL;
    } else if (result->status == LOUPE_IMAGE_OK) {
        set_message(result, LOUPE_IMAGE_CORRUPT, "decoding failed");
    }
    png_destroy_read_struct(s->png ? &s->png : NULL, s->info ? &s->info : NULL, NULL);
    free(s->pixels);
    free(s->rows);
    free(s);
}

static void png_write_memory(png_structp png, png_bytep data, size_t length) {
    struct png_state *s = (struct png_state *)png_get_io_ptr(png);
    if (length > s->out_capacity - s->out_size) {
        size_t capacity = s->out_capacity ? s->out_capacity : 4096;
        while (length > capacity - s->out_size) {
            capacity *= 2;
        }
        unsigned char *grown = (unsigned char *)realloc(s->out, capacity);
        if (grown == NULL) {
            png_error(png, "out of memory");
        }
        s->out = grown;
        s->out_capacity = capacity;
    }
    memcpy(s->out + s->out_size, data, length);
    s->out_size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

static int png_encode_guarded(struct png_state *s, const unsigned char *pixels, uint32_t width, uint32_t height,
                              int channels) {
    if (setjmp(s->jump)) {
        return 1;
    }
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    png_set_write_fn(s->png, s, png_write_memory, png_flush_memory);
    png_set_IHDR(s->png, s->info, width, height, 8, color_types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(s->png, s->info);
    size_t rowbytes = (size_t)width * (size_t)channels;
    for (uint32_t y = 0; y < height; y++) {
        png_write_row(s->png, (png_const_bytep)(pixels + (size_t)y * rowbytes));
    }
    png_write_end(s->png, NULL);
    return 0;
}

void loupe_png_encode(const unsigned char *pixels, uint32_t width, uint32_t height, int channels,
                      loupe_image_result *result) {
    memset(result, 0, sizeof(*result));
    if (channels < 1 || channels > 4 || width == 0 || height == 0) {
        set_message(result, LOUPE_IMAGE_FAILED, "PNG needs 1-4 channels and a non-empty image");
        return;
    }
    struct png_state *s = (struct png_state *)calloc(1, sizeof(struct png_state));
    if (s == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
        return;
    }
    s->result = result;
    s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, png_error_handler, png_warning_handler);
    s->info = s->png ? png_create_info_struct(s->png) : NULL;
    if (s->png == NULL || s->info == NULL) {
        set_message(result, LOUPE_IMAGE_FAILED, "out of memory");
    } else if (png_encode_guarded(s, pixels, width, height, channels) == 0) {
        result->data = s->out;
        result->size = s->out_size;
        result->width = width;
        result->height = height;
        result->channels = channels;
        result->bit_depth = 8;
        s->out = NULL;
    } else if (result->status == LOUPE_IMAGE_CORRUPT) {
        result->status = LOUPE_IMAGE_FAILED;
    }
    png_destroy_write_struct(s->png ? &s->png : NULL, s->info ? &s->info : NULL);
    free(s->out);
    free(s);
}

void loupe_image_free(void *data) { free(data); }
