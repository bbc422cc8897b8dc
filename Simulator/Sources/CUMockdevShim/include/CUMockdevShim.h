// A small C shim over umockdev (and so GLib) for the Swift USB emulator, PenUSBEmulator.
//
// It does the parts Swift cannot do comfortably: GObject signals, the usbdevfs ioctl numbers
// (function-like macros Swift does not import), the layout of struct usbdevfs_urb, and moving
// memory between the ioctl client (libusb) and the handler through umockdev's IoctlData API.
// What to answer is decided in Swift; nothing here knows about pens.
//
// This header deliberately includes no GLib or umockdev header: the types are opaque.

#ifndef CUMOCKDEV_SHIM_H
#define CUMOCKDEV_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A umockdev testbed: a private /sys and /dev for this process (through the preload library).
typedef struct pcum_testbed pcum_testbed;
/// One ioctl being handled (a UMockdevIoctlClient with a request in flight).
typedef struct pcum_client pcum_client;
/// A submitted URB, held by the handler until it is reaped: the client's URB and buffer.
typedef struct pcum_urb pcum_urb;

#define PCUM_SWIFT_NAME(name) __attribute__((swift_name(#name)))

/// The usbdevfs requests the emulator tells apart. Everything else is PCUMRequestOther.
typedef enum __attribute__((enum_extensibility(closed))) pcum_request {
  PCUMRequestOther PCUM_SWIFT_NAME(other) = 0,
  PCUMRequestGetCapabilities PCUM_SWIFT_NAME(getCapabilities),
  PCUMRequestClaimInterface PCUM_SWIFT_NAME(claimInterface),
  PCUMRequestReleaseInterface PCUM_SWIFT_NAME(releaseInterface),
  PCUMRequestSubmitURB PCUM_SWIFT_NAME(submitURB),
  PCUMRequestReapURB PCUM_SWIFT_NAME(reapURB),
  PCUMRequestReapURBNDelay PCUM_SWIFT_NAME(reapURBNDelay),
  PCUMRequestDiscardURB PCUM_SWIFT_NAME(discardURB),
  PCUMRequestDisconnectClaim PCUM_SWIFT_NAME(disconnectClaim),
  PCUMRequestIoctl PCUM_SWIFT_NAME(ioctl),
  PCUMRequestSetInterface PCUM_SWIFT_NAME(setInterface),
  PCUMRequestSetConfiguration PCUM_SWIFT_NAME(setConfiguration),
  PCUMRequestClearHalt PCUM_SWIFT_NAME(clearHalt),
  PCUMRequestResetEndpoint PCUM_SWIFT_NAME(resetEndpoint),
  PCUMRequestReset PCUM_SWIFT_NAME(reset),
  PCUMRequestGetSpeed PCUM_SWIFT_NAME(getSpeed),
  PCUMRequestConnectInfo PCUM_SWIFT_NAME(connectInfo),
  PCUMRequestGetDriver PCUM_SWIFT_NAME(getDriver),
} pcum_request;

/// URB types (USBDEVFS_URB_TYPE_*).
enum {
  PCUM_URB_TYPE_ISO = 0,
  PCUM_URB_TYPE_INTERRUPT = 1,
  PCUM_URB_TYPE_CONTROL = 2,
  PCUM_URB_TYPE_BULK = 3,
};

/// Capability bits (USBDEVFS_CAP_*).
enum {
  PCUM_CAP_ZERO_PACKET = 0x01,
  PCUM_CAP_BULK_CONTINUATION = 0x02,
  PCUM_CAP_NO_PACKET_SIZE_LIM = 0x04,
  PCUM_CAP_BULK_SCATTER_GATHER = 0x08,
  PCUM_CAP_REAP_AFTER_DISCONNECT = 0x10,
};

/// What the handler needs to know of a submitted URB.
typedef struct pcum_urb_info {
  uint8_t type;
  uint8_t endpoint;
  uint32_t flags;
  int32_t buffer_length;
  /// The URB's address in the client, which DISCARDURB names.
  uintptr_t address;
} pcum_urb_info;

/// Called on umockdev's worker thread for every ioctl on the device node. It must end the
/// request exactly once: pcum_client_complete, or pcum_client_reap.
typedef void (*pcum_ioctl_fn)(void *context, pcum_client *client, pcum_request request);
/// Called once when the handler can no longer be called (after the testbed is freed and any
/// call in flight has returned), to release `context`.
typedef void (*pcum_release_fn)(void *context);

// MARK: Testbed

/// A new testbed. This sets $UMOCKDEV_DIR for the process (until pcum_testbed_free).
pcum_testbed *pcum_testbed_new(void);

/// Whether this process runs with umockdev's preload library (so that libusb sees the testbed).
/// umockdev caches the first answer: call it only once a testbed exists.
int pcum_in_mock_environment(void);

/// The testbed's root directory (a /tmp/umockdev.XXXXXX directory), owned by the testbed.
const char *pcum_testbed_root_dir(pcum_testbed *testbed);

/// Attaches `fn` to the device node `devnode` (e.g. "/dev/bus/usb/001/002") and then adds the
/// devices described by `description` (umockdev-record's text format). Attaching comes first so
/// that a client never finds the node without a handler. Returns 0, or -1 with a message in
/// `error` (truncated to `error_size`). On success the testbed owns `context` and calls
/// `release(context)` when it no longer needs it; on failure the caller keeps it.
int pcum_testbed_add_device(pcum_testbed *testbed, const char *devnode, const char *description,
                            pcum_ioctl_fn fn, void *context, pcum_release_fn release,
                            char *error, size_t error_size);

/// Sends the "remove" uevent for `syspath` (e.g. "/sys/devices/usb1/1-1") and then removes the
/// device's sysfs directory and device node from the testbed.
void pcum_testbed_remove_device(pcum_testbed *testbed, const char *syspath);

/// Detaches the handler and frees the testbed, which removes its directory and unsets
/// $UMOCKDEV_DIR. Close every libusb handle on its devices first.
void pcum_testbed_free(pcum_testbed *testbed);

// MARK: In the handler

/// Ends the request: the client's ioctl returns `result`, with errno `err` when it is -1.
void pcum_client_complete(pcum_client *client, long result, int err);

/// The raw ioctl argument (for DISCARDURB: the address of the URB to discard).
uintptr_t pcum_client_arg_value(pcum_client *client);

/// Reads `size` bytes from the client memory the argument points to. Returns 0 or -1.
int pcum_client_arg_read(pcum_client *client, void *out, size_t size);

/// Writes `size` bytes to the client memory the argument points to (GET_CAPABILITIES,
/// CONNECTINFO); they reach the client when the request completes. Returns 0 or -1.
int pcum_client_arg_write(pcum_client *client, const void *data, size_t size);

/// SUBMITURB: takes the client's URB and its buffer. NULL when they cannot be read.
pcum_urb *pcum_urb_take(pcum_client *client, pcum_urb_info *info);

/// The handler's copy of the URB's buffer (buffer_length bytes; NULL when it is empty). For a
/// control URB it starts with the 8-byte setup packet.
uint8_t *pcum_urb_buffer(pcum_urb *urb);

/// Sets the URB's status (0 or a negative errno) and actual length, and copies `length` bytes of
/// `data` into its buffer at `offset` (8 for the data stage of a control URB). The client sees
/// all of it when the URB is reaped.
void pcum_urb_finish(pcum_urb *urb, int status, int actual_length, const uint8_t *data,
                     size_t offset, size_t length);

/// REAPURB/REAPURBNDELAY: hands `urb` to the client (its pointer, status, length and data) and
/// completes the request with 0. Releases `urb`.
void pcum_client_reap(pcum_client *client, pcum_urb *urb);

/// The client (open file) that submitted `urb`: only that client may reap or discard it.
pcum_client *pcum_urb_client(pcum_urb *urb);

/// Whether the client that submitted `urb` still has the device open.
int pcum_urb_client_connected(pcum_urb *urb);

/// Releases a URB that will never be reaped (a refused submission, or a testbed going away).
void pcum_urb_release(pcum_urb *urb);

#ifdef __cplusplus
}
#endif

#endif
