// System libjpeg-turbo (Debian: libjpeg62-turbo-dev). jpeglib.h needs size_t and FILE declared first.
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
