// libusb 1.0, found through pkg-config (libusb-1.0). The header path pkg-config gives is
// .../include/libusb-1.0, so the header is included by its bare name.
#include <libusb.h>
