// C helpers around libpng and libjpeg-turbo for LoupeImage.
//
// Both libraries report fatal errors by calling an error handler that must not return; the
// usual answer is setjmp/longjmp. A longjmp across Swift frames is undefined behaviour, so every
// libpng/libjpeg call lives here, in C, between a setjmp and the matching return. Swift only sees
// plain functions that return a status code and a message.
#ifndef LOUPE_CIMAGESHIMS_H
#define LOUPE_CIMAGESHIMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Length of the message buffer in `loupe_image_result`.
#define LOUPE_IMAGE_MESSAGE_LENGTH 256

/// Status codes.
enum {
    LOUPE_IMAGE_OK = 0,
    /// The data is not a valid file of the format (corrupt or truncated); `message` says why.
    LOUPE_IMAGE_CORRUPT = 1,
    /// The file is valid but uses a feature Loupe does not decode (e.g. CMYK JPEG).
    LOUPE_IMAGE_UNSUPPORTED = 2,
    /// Width × height × channels exceeds `max_bytes`.
    LOUPE_IMAGE_TOO_LARGE = 3,
    /// Out of memory, or invalid arguments to an encoder.
    LOUPE_IMAGE_FAILED = 4,
};

/// What a decoder or encoder hands back. `data` is malloc'd; release it with
/// `loupe_image_free`. Decoders: `data` holds `height` rows of `width * channels` samples,
/// interleaved; 8-bit samples are bytes, 16-bit samples are native-endian `uint16_t`.
/// Encoders: `data`/`size` are the encoded file.
typedef struct {
    int status;
    uint32_t width;
    uint32_t height;
    int channels;
    int bit_depth;
    unsigned char *data;
    size_t size;
    char message[LOUPE_IMAGE_MESSAGE_LENGTH];
} loupe_image_result;

/// Decodes a PNG held in memory: every colour type and bit depth, interlaced or not.
/// Palette images become RGB (RGBA with a tRNS chunk), gray images of 1/2/4 bits become 8-bit,
/// tRNS becomes an alpha channel; 16-bit samples are kept at 16 bits. Gamma chunks are ignored
/// (samples are returned as stored, like PIL). Images whose decoded size exceeds `max_bytes`
/// are refused before any pixel buffer is allocated.
void loupe_png_decode(const unsigned char *bytes, size_t size, size_t max_bytes, loupe_image_result *result);

/// Encodes 8-bit interleaved samples (`channels` 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as PNG.
void loupe_png_encode(const unsigned char *pixels, uint32_t width, uint32_t height, int channels,
                      loupe_image_result *result);

/// Decodes a baseline or progressive JPEG held in memory to 8-bit gray (1 channel) or RGB
/// (3 channels) with libjpeg's defaults (ISLOW IDCT, fancy upsampling), as PIL does. CMYK/YCCK
/// files give LOUPE_IMAGE_UNSUPPORTED; a file that ends early gives LOUPE_IMAGE_CORRUPT.
void loupe_jpeg_decode(const unsigned char *bytes, size_t size, size_t max_bytes, loupe_image_result *result);

/// Encodes 8-bit gray (1 channel) or RGB (3 channels) as a baseline JPEG, quality 1–100,
/// 4:2:0 chroma subsampling for RGB (libjpeg's default).
void loupe_jpeg_encode(const unsigned char *pixels, uint32_t width, uint32_t height, int channels,
                       int quality, loupe_image_result *result);

/// Frees `data` from a result.
void loupe_image_free(void *data);

#ifdef __cplusplus
}
#endif

#endif
