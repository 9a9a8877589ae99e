// libwebp and its demuxer (Debian: libwebp-dev), found through pkg-config "libwebpdemux" (which requires libwebp).
// The animation decoder composes frames as Pillow's WebP plugin reads them.
#include <webp/decode.h>
#include <webp/demux.h>
