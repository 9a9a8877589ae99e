// libjpeg-turbo (Debian: libjpeg62-turbo-dev), found through pkg-config "libjpeg". jpeglib.h needs stdio.h first.
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
