// System libpng (Debian: libpng-dev). Only the C helper target CImageShims calls it directly.
#include <png.h>
