/*
 * The device worker's doorbell wake-up without a V8 task: an eventfd that the application thread
 * creates and writes (doorbellRing) when the worker sleeps, and that the worker's event loop
 * watches (doorbellWatch: a uv_poll whose callback drains it and calls JS), so a doorbell wakes
 * the worker's libuv loop directly instead of settling an Atomics.waitAsync promise (a task posted
 * to the worker's platform, an async handle, a promise job). schedYield() gives the CPU to another
 * runnable thread (sched_yield).
 *
 * Ownership: the application thread opens and closes the eventfd (doorbellOpen/doorbellClose) and
 * is its only writer; it closes it only after the worker is gone, so a ring never writes to a
 * descriptor number reused by someone else. The worker only polls it (uv_poll does not own the
 * descriptor) and stops polling before it exits (doorbellUnwatch, or its environment's cleanup).
 */
#define _GNU_SOURCE
#include "waiter.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "napi_util.h"

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref fn;
  napi_async_context actx;
  napi_async_cleanup_hook_handle cleanup;
  int fd;
  int stopping, closed, finalized; /* freed once the handle closed and the JS handle was collected */
} watch;

/* doorbellOpen(): a new eventfd (non-blocking, close-on-exec); its number */
static napi_value js_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    napi_throw_error(env, NULL, "doorbellOpen: eventfd failed");
    return NULL;
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static int fd_arg(napi_env env, napi_callback_info info, napi_value *rest, size_t nrest) {
  size_t argc = 1 + nrest;
  napi_value argv[3];
  if (argc > 3) return -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t fd;
  if (argc < 1 + nrest || !nu_get_u32(env, argv[0], &fd) || fd > INT32_MAX) return -1;
  for (size_t i = 0; i < nrest; i++) rest[i] = argv[1 + i];
  return (int)fd;
}

/* doorbellClose(fd): closes an eventfd from doorbellOpen (the worker no longer watches it) */
static napi_value js_close(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info, NULL, 0);
  if (fd < 0) return nu_throw_type(env, "doorbellClose(fd)");
  close(fd);
  return nu_undefined(env);
}

/* doorbellRing(fd): wakes the loop watching it (an eventfd write; never blocks) */
static napi_value js_ring(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info, NULL, 0);
  if (fd < 0) return nu_throw_type(env, "doorbellRing(fd)");
  uint64_t one = 1;
  ssize_t r;
  do r = write(fd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
  /* EAGAIN: the counter is at its maximum, i.e. the eventfd is readable anyway */
  return nu_undefined(env);
}

static void on_closed(uv_handle_t *h) {
  watch *w = h->data;
  if (w->cleanup) napi_remove_async_cleanup_hook(w->cleanup), w->cleanup = NULL;
  w->closed = 1;
  if (w->finalized) free(w);
}

/* Stops polling; what needs the env (the callback's reference) is dropped by the caller. */
static void stop_watch(watch *w) {
  if (w->stopping) return;
  w->stopping = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  stop_watch(arg);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  watch *w = h->data;
  (void)events;
  if (w->stopping) return;
  uint64_t v;
  ssize_t r;
  do r = read(w->fd, &v, sizeof v);
  while (r < 0 && errno == EINTR);
  if (status < 0) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, result;
  if (w->fn && napi_get_reference_value(env, w->fn, &fn) == napi_ok && fn) {
    napi_get_global(env, &recv); /* make_callback wants an object */
    if (napi_make_callback(env, w->actx, recv, fn, 0, NULL, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void finalize_watch(napi_env env, void *data, void *hint) {
  watch *w = data;
  (void)hint;
  if (!w->stopping) {
    if (w->fn) napi_delete_reference(env, w->fn), w->fn = NULL;
    if (w->actx) napi_async_destroy(env, w->actx), w->actx = NULL;
    stop_watch(w);
  }
  w->finalized = 1;
  if (w->closed) free(w);
}

/* doorbellWatch(fd, fn): this thread's event loop calls fn() whenever fd was rung (the rings
 * drained first); does not keep the loop alive. Returns a handle for doorbellUnwatch. */
static napi_value js_watch(napi_env env, napi_callback_info info) {
  napi_value fnv;
  int fd = fd_arg(env, info, &fnv, 1);
  napi_valuetype t;
  if (fd < 0 || napi_typeof(env, fnv, &t) != napi_ok || t != napi_function) return nu_throw_type(env, "doorbellWatch(fd, fn)");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return nu_throw_type(env, "doorbellWatch: no event loop");
  watch *w = calloc(1, sizeof *w);
  if (!w) return nu_throw_range(env, "doorbellWatch: out of memory");
  w->env = env;
  w->fd = fd;
  if (uv_poll_init(loop, &w->poll, fd) != 0) {
    free(w);
    return nu_throw_type(env, "doorbellWatch: not a descriptor it can poll");
  }
  w->poll.data = w;
  napi_value name;
  napi_create_string_utf8(env, "softroce:doorbell", NAPI_AUTO_LENGTH, &name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &w->actx);
  napi_create_reference(env, fnv, 1, &w->fn);
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  uv_unref((uv_handle_t *)&w->poll);
  napi_add_async_cleanup_hook(env, on_env_cleanup, w, &w->cleanup);
  napi_value out;
  napi_create_external(env, w, finalize_watch, NULL, &out);
  return out;
}

/* doorbellUnwatch(handle): stops the watch doorbellWatch started (once; later calls do nothing) */
static napi_value js_unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  watch *w = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&w) != napi_ok || !w) return nu_throw_type(env, "doorbellUnwatch(handle)");
  if (w->stopping) return nu_undefined(env);
  if (w->fn) napi_delete_reference(env, w->fn), w->fn = NULL;
  if (w->actx) napi_async_destroy(env, w->actx), w->actx = NULL;
  stop_watch(w);
  return nu_undefined(env);
}

static napi_value js_sched_yield(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  return nu_undefined(env);
}

void waiter_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"doorbellOpen", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"doorbellClose", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"doorbellRing", NULL, js_ring, NULL, NULL, NULL, napi_default, NULL},
      {"doorbellWatch", NULL, js_watch, NULL, NULL, NULL, napi_default, NULL},
      {"doorbellUnwatch", NULL, js_unwatch, NULL, NULL, NULL, napi_default, NULL},
      {"schedYield", NULL, js_sched_yield, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
