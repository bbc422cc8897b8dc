// See include/CUMockdevShim.h. Memory of the client (libusb) is only ever touched through
// umockdev's IoctlData API (resolve, set_ptr, complete), never through the raw pointers, even
// though client and handler share the address space: that is what keeps the emulation honest
// (and thread-sanitizer clean) and what would still work with the client in another process.

#ifdef __linux__

// <linux/ioctl.h> must come before <linux/usbdevice_fs.h>, which uses its macros.
#include <linux/ioctl.h>
#include <linux/usbdevice_fs.h>

#include <errno.h>
#include <string.h>

#include <umockdev.h>

#include "CUMockdevShim.h"

struct pcum_testbed {
  UMockdevTestbed *testbed;
  UMockdevIoctlBase *handler;
  gulong signal_id;
  char *root_dir;
  char *devnode;
};

struct pcum_urb {
  UMockdevIoctlClient *client;
  UMockdevIoctlData *urb;
  UMockdevIoctlData *buffer;
};

typedef struct {
  pcum_ioctl_fn fn;
  void *context;
  pcum_release_fn release;
} handler_closure;

static pcum_request classify(gulong request) {
  switch (request) {
  case USBDEVFS_GET_CAPABILITIES: return PCUMRequestGetCapabilities;
  case USBDEVFS_CLAIMINTERFACE: return PCUMRequestClaimInterface;
  case USBDEVFS_RELEASEINTERFACE: return PCUMRequestReleaseInterface;
  case USBDEVFS_SUBMITURB: return PCUMRequestSubmitURB;
  case USBDEVFS_REAPURB: return PCUMRequestReapURB;
  case USBDEVFS_REAPURBNDELAY: return PCUMRequestReapURBNDelay;
  case USBDEVFS_DISCARDURB: return PCUMRequestDiscardURB;
  case USBDEVFS_DISCONNECT_CLAIM: return PCUMRequestDisconnectClaim;
  case USBDEVFS_IOCTL: return PCUMRequestIoctl;
  case USBDEVFS_SETINTERFACE: return PCUMRequestSetInterface;
  case USBDEVFS_SETCONFIGURATION: return PCUMRequestSetConfiguration;
  case USBDEVFS_CLEAR_HALT: return PCUMRequestClearHalt;
  case USBDEVFS_RESETEP: return PCUMRequestResetEndpoint;
  case USBDEVFS_RESET: return PCUMRequestReset;
  case USBDEVFS_GET_SPEED: return PCUMRequestGetSpeed;
  case USBDEVFS_CONNECTINFO: return PCUMRequestConnectInfo;
  case USBDEVFS_GETDRIVER: return PCUMRequestGetDriver;
  default: return PCUMRequestOther;
  }
}

static gboolean on_handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client,
                                gpointer user_data) {
  (void)base;
  handler_closure *closure = user_data;
  // Acquire pairs with the release in pcum_testbed_add_device (see there).
  pcum_ioctl_fn fn = __atomic_load_n(&closure->fn, __ATOMIC_ACQUIRE);
  void *context = __atomic_load_n(&closure->context, __ATOMIC_ACQUIRE);
  fn(context, (pcum_client *)client, classify(umockdev_ioctl_client_get_request(client)));
  return TRUE;
}

static void on_closure_destroyed(gpointer user_data, GClosure *unused) {
  (void)unused;
  handler_closure *closure = user_data;
  if (closure->release != NULL) closure->release(closure->context);
  g_free(closure);
}

// MARK: Testbed

pcum_testbed *pcum_testbed_new(void) {
  pcum_testbed *t = g_new0(pcum_testbed, 1);
  t->testbed = umockdev_testbed_new();
  if (t->testbed == NULL) {
    g_free(t);
    return NULL;
  }
  t->root_dir = umockdev_testbed_get_root_dir(t->testbed);
  return t;
}

int pcum_in_mock_environment(void) { return umockdev_in_mock_environment() ? 1 : 0; }

const char *pcum_testbed_root_dir(pcum_testbed *t) { return t->root_dir; }

static void set_error(char *error, size_t size, const char *what, GError *e) {
  if (error != NULL && size > 0)
    g_snprintf(error, size, "%s: %s", what, e != NULL ? e->message : "failed");
}

int pcum_testbed_add_device(pcum_testbed *t, const char *devnode, const char *description,
                            pcum_ioctl_fn fn, void *context, pcum_release_fn release,
                            char *error, size_t error_size) {
  GError *e = NULL;
  if (t->handler != NULL) {
    set_error(error, error_size, "pcum_testbed_add_device", NULL);
    return -1;
  }
  UMockdevIoctlBase *handler = umockdev_ioctl_base_new();
  if (!umockdev_testbed_attach_ioctl(t->testbed, devnode, handler, &e)) {
    set_error(error, error_size, "umockdev_testbed_attach_ioctl", e);
    g_clear_error(&e);
    g_object_unref(handler);
    return -1;
  }
  handler_closure *closure = g_new0(handler_closure, 1);
  // The closure is filled on this thread and read on umockdev's worker thread, which already
  // runs. GLib's signal lock orders the two, but that lock is a futex ThreadSanitizer cannot see
  // (it reported a race on `fn` and `context`); the release stores, paired with acquire loads in
  // on_handle_ioctl, make the hand-over explicit instead of relying on GLib's internals.
  closure->release = release;
  __atomic_store_n(&closure->context, context, __ATOMIC_RELEASE);
  __atomic_store_n(&closure->fn, fn, __ATOMIC_RELEASE);
  t->signal_id = g_signal_connect_data(handler, "handle-ioctl", G_CALLBACK(on_handle_ioctl),
                                       closure, on_closure_destroyed, 0);
  t->handler = handler;
  t->devnode = g_strdup(devnode);
  if (!umockdev_testbed_add_from_string(t->testbed, description, &e)) {
    set_error(error, error_size, "umockdev_testbed_add_from_string", e);
    g_clear_error(&e);
    // The caller keeps `context`: forget the closure without releasing it.
    closure->release = NULL;
    umockdev_testbed_detach_ioctl(t->testbed, t->devnode, NULL);
    g_signal_handler_disconnect(handler, t->signal_id);
    return -1;
  }
  return 0;
}

void pcum_testbed_remove_device(pcum_testbed *t, const char *syspath) {
  umockdev_testbed_uevent(t->testbed, syspath, "remove");
  umockdev_testbed_remove_device(t->testbed, syspath);
}

void pcum_testbed_free(pcum_testbed *t) {
  if (t == NULL) return;
  if (t->handler != NULL) {
    if (t->devnode != NULL) umockdev_testbed_detach_ioctl(t->testbed, t->devnode, NULL);
    if (t->signal_id != 0 && g_signal_handler_is_connected(t->handler, t->signal_id))
      g_signal_handler_disconnect(t->handler, t->signal_id);
  }
  // Freeing the testbed stops its worker thread, removes its directory and unsets
  // $UMOCKDEV_DIR.
  g_object_unref(t->testbed);
  if (t->handler != NULL) g_object_unref(t->handler);
  g_free(t->root_dir);
  g_free(t->devnode);
  g_free(t);
}

// MARK: In the handler

static UMockdevIoctlData *arg_of(pcum_client *client) {
  return umockdev_ioctl_client_get_arg((UMockdevIoctlClient *)client);
}

void pcum_client_complete(pcum_client *client, long result, int err) {
  umockdev_ioctl_client_complete((UMockdevIoctlClient *)client, result, err);
}

uintptr_t pcum_client_arg_value(pcum_client *client) {
  UMockdevIoctlData *arg = arg_of(client);
  uintptr_t value = 0;
  if (arg != NULL && arg->data != NULL && (size_t)arg->data_len >= sizeof value)
    memcpy(&value, arg->data, sizeof value);
  return value;
}

int pcum_client_arg_read(pcum_client *client, void *out, size_t size) {
  GError *e = NULL;
  UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg_of(client), 0, size, &e);
  if (d == NULL) {
    g_clear_error(&e);
    return -1;
  }
  memcpy(out, d->data, size);
  g_object_unref(d);
  return 0;
}

int pcum_client_arg_write(pcum_client *client, const void *data, size_t size) {
  GError *e = NULL;
  UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg_of(client), 0, size, &e);
  if (d == NULL) {
    g_clear_error(&e);
    return -1;
  }
  memcpy(d->data, data, size);
  g_object_unref(d);
  return 0;
}

pcum_urb *pcum_urb_take(pcum_client *client, pcum_urb_info *info) {
  GError *e = NULL;
  memset(info, 0, sizeof *info);
  UMockdevIoctlData *u =
      umockdev_ioctl_data_resolve(arg_of(client), 0, sizeof(struct usbdevfs_urb), &e);
  if (u == NULL) {
    g_clear_error(&e);
    return NULL;
  }
  const struct usbdevfs_urb *urb = (const struct usbdevfs_urb *)u->data;
  info->type = urb->type;
  info->endpoint = urb->endpoint;
  info->flags = urb->flags;
  info->buffer_length = urb->buffer_length;
  info->address = (uintptr_t)u->client_addr;
  // usbfs refuses buffers over its memory limit (16 MiB by default); so does the emulator.
  if (urb->buffer_length < 0 || urb->buffer_length > 16 * 1024 * 1024) {
    g_object_unref(u);
    return NULL;
  }
  UMockdevIoctlData *b = NULL;
  if (urb->buffer_length > 0) {
    b = umockdev_ioctl_data_resolve(u, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer),
                                    (gsize)urb->buffer_length, &e);
    if (b == NULL) {
      g_clear_error(&e);
      g_object_unref(u);
      return NULL;
    }
  }
  pcum_urb *result = g_new0(pcum_urb, 1);
  result->client = g_object_ref((UMockdevIoctlClient *)client);
  result->urb = u;
  result->buffer = b;
  return result;
}

uint8_t *pcum_urb_buffer(pcum_urb *urb) { return urb->buffer != NULL ? urb->buffer->data : NULL; }

pcum_client *pcum_urb_client(pcum_urb *urb) { return (pcum_client *)urb->client; }

int pcum_urb_client_connected(pcum_urb *urb) {
  return umockdev_ioctl_client_get_connected(urb->client) ? 1 : 0;
}

void pcum_urb_finish(pcum_urb *urb, int status, int actual_length, const uint8_t *data,
                     size_t offset, size_t length) {
  struct usbdevfs_urb *u = (struct usbdevfs_urb *)urb->urb->data;
  u->status = status;
  u->actual_length = actual_length;
  if (length > 0 && data != NULL && urb->buffer != NULL &&
      offset + length <= (size_t)urb->buffer->data_len)
    memcpy(urb->buffer->data + offset, data, length);
}

void pcum_client_reap(pcum_client *client, pcum_urb *urb) {
  GError *e = NULL;
  // The argument points to the client's `struct usbdevfs_urb *`; make it point to the URB.
  UMockdevIoctlData *p = umockdev_ioctl_data_resolve(arg_of(client), 0, sizeof(void *), &e);
  if (p == NULL) {
    g_clear_error(&e);
    pcum_client_complete(client, -1, EFAULT);
    pcum_urb_release(urb);
    return;
  }
  // The URB (and through it its buffer) is now a child of the argument: completing the request
  // writes back whatever changed in them, then the pointer.
  umockdev_ioctl_data_set_ptr(p, 0, urb->urb);
  g_object_unref(p);
  pcum_client_complete(client, 0, 0);
  pcum_urb_release(urb);
}

void pcum_urb_release(pcum_urb *urb) {
  if (urb == NULL) return;
  if (urb->buffer != NULL) g_object_unref(urb->buffer);
  g_object_unref(urb->urb);
  g_object_unref(urb->client);
  g_free(urb);
}

#endif  // __linux__
